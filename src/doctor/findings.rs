//! The warning signs of a plan, found by walking its nodes (pure: a plan and
//! a catalog in, findings out; unit-tested on stored plans).

use serde::Serialize;

use super::catalog::{Catalog, Table};
use super::fixes::{index_fix, no_index_reason, statistics_fix};
use super::index::SortColumn;
use super::plan::{Buffers, Node};
use super::predicate::{self, Term};
use super::use_aggregate::use_aggregate;

/// A table this large or larger is worth an index (rows).
pub const LARGE_TABLE_ROWS: f64 = 10_000.0;
/// A scan returning at most this fraction of what it reads is selective.
pub const SELECTIVE_FRACTION: f64 = 0.1;
/// A nested loop running its inner side this often...
pub const NESTED_LOOP_LOOPS: f64 = 100.0;
/// ...or comparing this many row pairs, is a warning sign.
pub const NESTED_LOOP_ROWS: f64 = 100_000.0;
/// Estimates off by this factor (either way) mislead the planner...
pub const MISESTIMATE_FACTOR: f64 = 10.0;
/// ...when the larger side has at least this many rows.
pub const MISESTIMATE_MIN_ROWS: f64 = 100.0;

/// What a finding is about. Serialized in snake_case (the `kind` of `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SeqScan,
    NestedLoop,
    FilterAfterIndex,
    Misestimate,
    Spill,
    PartitionsNotPruned,
    UseAggregate,
    UnusedIndex,
    DuplicateIndex,
    RedundantIndex,
    InvalidIndex,
    /// A note about one of tally's own indexes (what it serves), never a drop.
    TallyIndex,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::SeqScan => "seq_scan",
            Kind::NestedLoop => "nested_loop",
            Kind::FilterAfterIndex => "filter_after_index",
            Kind::Misestimate => "misestimate",
            Kind::Spill => "spill",
            Kind::PartitionsNotPruned => "partitions_not_pruned",
            Kind::UseAggregate => "use_aggregate",
            Kind::UnusedIndex => "unused_index",
            Kind::DuplicateIndex => "duplicate_index",
            Kind::RedundantIndex => "redundant_index",
            Kind::InvalidIndex => "invalid_index",
            Kind::TallyIndex => "tally_index",
        }
    }
}

/// One warning sign, where it is, and what fixes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The plan node (`Seq Scan on marketing.clicks`); absent in the index audit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `schema.table` the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// `schema.index` (index audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Estimated rows (all loops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_rows: Option<f64>,
    /// Actual rows (all loops); absent with `--no-analyze`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_rows: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loops: Option<f64>,
    /// Milliseconds in the node and below, all loops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffers: Option<Buffers>,
    /// What is wrong, with the numbers.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
    /// Statements that apply the fix, in order (may be empty).
    pub sql: Vec<String>,
}

impl Finding {
    pub(super) fn at(kind: Kind, node: &Node, problem: String, fix: String, sql: Vec<String>) -> Finding {
        let loops = node.loops();
        Finding {
            kind,
            node: Some(node.label()),
            relation: node.relation(),
            index: None,
            estimated_rows: Some(node.plan_rows() * loops.unwrap_or(1.0).max(1.0)),
            actual_rows: node.actual_rows().map(|r| r * loops.unwrap_or(1.0)),
            loops,
            time_ms: node.total_time_ms(),
            buffers: node.buffers(),
            problem,
            fix,
            sql,
        }
    }
}

/// Every warning sign in `plan` (the top node of an EXPLAIN), most costly first.
pub fn analyze(plan: &Node, catalog: &Catalog) -> Vec<Finding> {
    let mut findings = Vec::new();
    walk(plan, &mut Vec::new(), catalog, &mut findings);
    misestimates(plan, false, catalog, &mut findings);
    use_aggregate(plan, catalog, &mut findings);
    findings.sort_by(|a, b| b.time_ms.unwrap_or(0.0).total_cmp(&a.time_ms.unwrap_or(0.0)));
    findings
}

fn walk<'a>(node: &Node<'a>, ancestors: &mut Vec<Node<'a>>, catalog: &Catalog, findings: &mut Vec<Finding>) {
    match node.node_type() {
        "Seq Scan" if !ancestors.last().is_some_and(is_append) => {
            if let Some(f) = seq_scan(&[*node], ancestors, catalog) {
                findings.push(f)
            }
        }
        "Append" | "Merge Append" => {
            let members: Vec<Node> = node.children().into_iter().filter(|c| c.node_type() == "Seq Scan").collect();
            for group in group_by_table(&members, catalog) {
                ancestors.push(*node);
                if let Some(f) = seq_scan(&group, ancestors, catalog) {
                    findings.push(f)
                }
                ancestors.pop();
            }
            findings.extend(partitions_not_pruned(node, catalog));
        }
        "Index Scan" | "Index Only Scan" | "Bitmap Heap Scan" => findings.extend(filter_after_index(node, catalog)),
        "Nested Loop" => findings.extend(nested_loop(node, catalog)),
        _ => {}
    }
    findings.extend(spill(node));
    ancestors.push(*node);
    for child in node.children() {
        walk(&child, ancestors, catalog, findings);
    }
    ancestors.pop();
}

fn is_append(node: &Node) -> bool {
    matches!(node.node_type(), "Append" | "Merge Append")
}

/// Scans grouped by the table an index would go on (a partition's root).
fn group_by_table<'a>(scans: &[Node<'a>], catalog: &Catalog) -> Vec<Vec<Node<'a>>> {
    let mut groups: Vec<(String, Vec<Node<'a>>)> = Vec::new();
    for scan in scans {
        let key = scan.relation().unwrap_or_default();
        let target = catalog.target(&key).map_or(key, |t| format!("{}.{}", t.schema, t.name));
        match groups.iter_mut().find(|(t, _)| *t == target) {
            Some((_, members)) => members.push(*scan),
            None => groups.push((target, vec![*scan])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Rows read and returned by scans over all their loops: (read, returned,
/// analyzed). Without ANALYZE, the catalog's row count and the estimate.
fn scan_counts(members: &[Node], catalog: &Catalog) -> (f64, f64, bool) {
    let analyzed = members.iter().any(|m| m.actual_rows().is_some());
    let (mut read, mut returned) = (0.0, 0.0);
    for m in members {
        let catalog_rows = m.relation().and_then(|r| catalog.table(&r)).map_or(0.0, |t| t.rows);
        match m.actual_rows() {
            Some(actual) => {
                let loops = m.loops().unwrap_or(1.0);
                read += (actual + m.rows_removed_by_filter()) * loops;
                returned += actual * loops;
            }
            None if !analyzed => {
                read += catalog_rows;
                returned += m.plan_rows();
            }
            None => {}
        }
    }
    (read, returned, analyzed)
}

fn seq_scan(members: &[Node], ancestors: &[Node], catalog: &Catalog) -> Option<Finding> {
    let first = members.first()?;
    let filter = first.filter()?;
    // A scan repeated by a nested loop is that loop's finding.
    if first.loops().unwrap_or(1.0) > 1.0 && ancestors.iter().any(|a| a.node_type() == "Nested Loop") {
        return None;
    }
    let key = first.relation()?;
    let target = catalog.target(&key)?;
    let (read, returned, _) = scan_counts(members, catalog);
    let table_rows: f64 = members
        .iter()
        .filter_map(|m| m.relation().and_then(|r| catalog.table(&r)))
        .map(|t| t.rows)
        .sum::<f64>()
        .max(read / members.iter().map(|m| m.loops().unwrap_or(1.0)).fold(1.0, f64::max));
    if table_rows < LARGE_TABLE_ROWS || returned > read * SELECTIVE_FRACTION {
        return None;
    }
    let alias = first.alias()?;
    let terms = predicate::terms(filter, alias);
    let sort = sort_columns(ancestors);
    let where_ = if members.len() > 1 {
        format!("{} partitions of {}", members.len(), target_name(target))
    } else {
        key.clone()
    };
    let problem = format!(
        "Seq Scan reads {} rows of {where_} to return {} ({}); filter: {}",
        count(read),
        count(returned),
        percent(returned, read),
        predicate::unqualify(filter, alias)
    );
    let (fix, sql) = index_fix(target, &terms, &sort, filter, alias);
    let mut finding = Finding::at(Kind::SeqScan, first, problem, fix, sql);
    if members.len() > 1 {
        finding.node = Some(format!("Seq Scan on {where_}"));
        finding.relation = Some(target_name(target));
        merge_counts(&mut finding, members);
    }
    Some(finding)
}

/// Sums the counts of every member into a finding made from the first.
fn merge_counts(finding: &mut Finding, members: &[Node]) {
    let loops = |m: &Node| m.loops().unwrap_or(1.0);
    finding.estimated_rows = Some(members.iter().map(|m| m.plan_rows() * loops(m).max(1.0)).sum());
    finding.actual_rows = members.iter().map(|m| m.actual_rows().map(|r| r * loops(m))).sum();
    finding.time_ms = members.iter().map(|m| m.total_time_ms()).sum();
    finding.buffers = members.iter().map(|m| m.buffers()).try_fold(Buffers::default(), |acc, b| {
        let b = b?;
        Some(Buffers {
            shared_hit: acc.shared_hit + b.shared_hit,
            shared_read: acc.shared_read + b.shared_read,
            temp_read: acc.temp_read + b.temp_read,
            temp_written: acc.temp_written + b.temp_written,
        })
    });
}

/// ORDER BY columns a Sort or Merge Append above the scan asks for, when
/// nothing between them joins or groups.
fn sort_columns(ancestors: &[Node]) -> Vec<SortColumn> {
    for (at, ancestor) in ancestors.iter().enumerate().rev() {
        match ancestor.node_type() {
            // A sort feeding a grouping is not the query's ORDER BY.
            "Sort" | "Incremental Sort"
                if at > 0
                    && matches!(
                        ancestors[at - 1].node_type(),
                        "Aggregate" | "Group" | "Unique" | "WindowAgg" | "SetOp"
                    ) =>
            {
                return Vec::new();
            }
            "Sort" | "Incremental Sort" | "Merge Append" => {
                return ancestor
                    .sort_keys()
                    .iter()
                    .map(|key| {
                        let (expr, direction) = match key.find(' ') {
                            Some(at) => (&key[..at], key[at..].to_string()),
                            None => (*key, String::new()),
                        };
                        let column = expr.rsplit_once('.').map_or(expr, |(_, c)| c).trim_matches('"').to_string();
                        (expr, SortColumn { column, direction })
                    })
                    .take_while(|(expr, s)| {
                        !expr.contains('(') && s.column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                    .map(|(_, s)| s)
                    .collect();
            }
            "Append" | "Result" | "Gather" | "Gather Merge" | "Materialize" => continue,
            _ => return Vec::new(),
        }
    }
    Vec::new()
}

fn filter_after_index(node: &Node, catalog: &Catalog) -> Option<Finding> {
    let filter = node.filter()?;
    let returned = node.actual_rows()?;
    let loops = node.loops().unwrap_or(1.0);
    let removed = node.rows_removed_by_filter();
    if removed * loops < LARGE_TABLE_ROWS || returned > removed * SELECTIVE_FRACTION {
        return None;
    }
    let target = catalog.target(&node.relation()?)?;
    let alias = node.alias()?;
    let mut terms = node.index_cond().map_or(Vec::new(), |c| predicate::terms(c, alias));
    terms.extend(predicate::terms(filter, alias));
    let (fix, sql) = index_fix(target, &terms, &[], filter, alias);
    let problem = format!(
        "{} finds {} rows through the index, then its filter discards {} of them ({}); filter: {}",
        node.label(),
        count((returned + removed) * loops),
        count(removed * loops),
        percent(removed, returned + removed),
        predicate::unqualify(filter, alias)
    );
    Some(Finding::at(Kind::FilterAfterIndex, node, problem, fix, sql))
}

fn nested_loop(node: &Node, catalog: &Catalog) -> Option<Finding> {
    let children = node.children();
    let (outer, inner) = (children.first()?, children.get(1)?);
    let inner_scan = inner.descendants().into_iter().find(|n| n.node_type() == "Seq Scan")?;
    let analyzed = inner_scan.actual_rows().is_some();
    let loops = if analyzed { inner.loops().unwrap_or(1.0) } else { outer.plan_rows() };
    let per_loop = if analyzed {
        inner.actual_rows().unwrap_or(0.0) + inner_scan.rows_removed_by_filter()
    } else {
        inner.plan_rows()
    };
    let compared = (per_loop * loops).max(node.rows_removed_by_join_filter());
    if loops < NESTED_LOOP_LOOPS || compared < NESTED_LOOP_ROWS {
        return None;
    }
    let key = inner_scan.relation()?;
    // A Materialize between the loop and the scan: the table is read once,
    // and the loop compares every pair from memory.
    let materialized = inner.descendants().iter().any(|n| n.node_type() == "Materialize");
    let problem = format!(
        "Nested Loop compares {} row pairs: {} outer rows, each against {} rows of {key} ({}){}",
        count(compared),
        count(loops),
        count(per_loop),
        if materialized { "a Seq Scan kept in memory" } else { "a Seq Scan per outer row" },
        node.join_filter().map_or(String::new(), |f| format!("; join filter {f}"))
    );
    // The column that could drive the loop through an index: a plain column
    // compared with = to the other side, on either side of the join.
    for side in [inner, outer] {
        for scan in side.descendants().into_iter().filter(|n| n.node_type() == "Seq Scan") {
            let (Some(alias), Some(relation)) = (scan.alias(), scan.relation()) else { continue };
            let Some(target) = catalog.target(&relation) else { continue };
            let mut terms: Vec<Term> = node.join_filter().map_or(Vec::new(), |f| predicate::terms(f, alias));
            if scan.is(&inner_scan) {
                terms.extend(inner_scan.filter().map_or(Vec::new(), |f| predicate::terms(f, alias)));
            }
            if terms.iter().any(|t| matches!(t, Term::Join { op, .. } if op == "=")) {
                let (fix, sql) = index_fix(target, &terms, &[], "", alias);
                let mut finding = Finding::at(Kind::NestedLoop, node, problem, fix, sql);
                finding.relation = Some(relation);
                return Some(finding);
            }
        }
    }
    let fix = "the join condition compares no plain column with =, so no index can drive the loop; rewrite it as \
               column = expression"
        .to_string();
    let mut finding = Finding::at(Kind::NestedLoop, node, problem, fix, Vec::new());
    finding.relation = Some(key);
    Some(finding)
}

fn spill(node: &Node) -> Option<Finding> {
    let (problem, wanted_kb) = if let Some(kb) = node.sort_spill_kb() {
        (
            format!(
                "Sort on {} spilled {} kB to disk ({})",
                node.sort_keys().join(", "),
                count(kb),
                node.sort_method().unwrap_or("external")
            ),
            kb * 3.0,
        )
    } else if let Some((batches, kb)) = node.hash_spill() {
        (format!("{} split into {} batches on disk (wanted ~{} kB)", node.node_type(), count(batches), count(kb)), kb)
    } else {
        return None;
    };
    let mb = (wanted_kb / 1024.0).max(4.0).ceil() as u64;
    let mb = mb.next_power_of_two();
    let fix = format!(
        "raise work_mem for this query to about {mb}MB (per sort or hash, per connection: for the session, or \
         ALTER ROLE ... SET work_mem for a reporting role), or read fewer rows"
    );
    Some(Finding::at(Kind::Spill, node, problem, fix, vec![format!("SET work_mem = '{mb}MB';")]))
}

fn partitions_not_pruned(node: &Node, catalog: &Catalog) -> Option<Finding> {
    if node.subplans_removed() > 0.0 {
        return None;
    }
    let members: Vec<Node> = node.children().into_iter().filter(|c| c.is_scan()).collect();
    let first = members.first()?;
    let root = catalog.table(&first.relation()?)?.root.clone()?;
    let parent = catalog.table(&root)?;
    let scanned: Vec<String> = members.iter().filter_map(|m| m.relation()).collect();
    if parent.leaves.len() < 2 || !parent.leaves.iter().all(|leaf| scanned.contains(leaf)) {
        return None;
    }
    // Only a filter on the partition key could have pruned.
    let alias = first.alias()?;
    let condition = first.filter().or(first.index_cond())?;
    let key_terms: Vec<Term> = predicate::terms(condition, alias)
        .into_iter()
        .filter(|t| matches!(t, Term::Wrapped { column, .. } if parent.partition_key.contains(column)))
        .collect();
    let mentions_key = parent.partition_key.iter().any(|k| condition.contains(&format!("{alias}.{k}")));
    if !mentions_key {
        return None;
    }
    let key = parent.partition_key.join(", ");
    let fix = match key_terms.first() {
        Some(_) => {
            no_index_reason(&key_terms, condition, alias).replace("no index on", "neither pruning nor an index on")
        }
        None => format!(
            "compare {key} itself with constants or stable expressions (not a column of another table) so \
             PostgreSQL can skip partitions"
        ),
    };
    let problem = format!(
        "{} scans all {} partitions of {root}: the filter on the partition key {key} cannot prune ({})",
        node.node_type(),
        parent.leaves.len(),
        predicate::unqualify(condition, alias)
    );
    let mut finding = Finding::at(Kind::PartitionsNotPruned, node, problem, fix, Vec::new());
    finding.relation = Some(root);
    Some(finding)
}

/// Nodes whose estimate is off by 10x or more and whose inputs are not
/// (the root cause, not the nodes that inherit it). Returns whether `node`
/// or a node below it was reported.
fn misestimates(node: &Node, under_limit: bool, catalog: &Catalog, findings: &mut Vec<Finding>) -> bool {
    let limited = under_limit || node.node_type() == "Limit";
    let mut below = false;
    for child in node.children() {
        below |= misestimates(&child, limited, catalog, findings);
    }
    if below || matches!(node.node_type(), "Limit" | "Hash" | "Materialize" | "Sort" | "Gather" | "Gather Merge") {
        return below;
    }
    let Some(actual) = node.actual_rows() else { return false };
    let estimated = node.plan_rows();
    let loops = node.loops().unwrap_or(1.0);
    // A Limit stops its input early: fewer rows than estimated is expected there.
    if limited && actual < estimated {
        return false;
    }
    let factor = actual.max(estimated) / actual.min(estimated).max(1.0);
    if factor < MISESTIMATE_FACTOR || actual.max(estimated) * loops < MISESTIMATE_MIN_ROWS {
        return false;
    }
    let problem = format!(
        "{} estimated {} rows, got {} ({}x {}); plans built on it (join order, loops, memory) are likely wrong",
        node.label(),
        count(estimated * loops),
        count(actual * loops),
        count(factor),
        if actual > estimated { "more" } else { "fewer" }
    );
    let (fix, sql) = statistics_fix(node, catalog);
    findings.push(Finding::at(Kind::Misestimate, node, problem, fix, sql));
    true
}

pub(super) fn target_name(table: &Table) -> String {
    format!("{}.{}", table.schema, table.name)
}

/// A count for people: 49,970; 1.5 for fractions.
pub fn count(n: f64) -> String {
    if n.fract() != 0.0 && n < 100.0 {
        return format!("{n:.1}");
    }
    let digits = format!("{}", n.round() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' && !out.ends_with('-') {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        return "0%".to_string();
    }
    let p = part / whole * 100.0;
    if p < 1.0 { format!("{p:.2}%") } else { format!("{p:.0}%") }
}
