//! Detectors that look at how a table is read: `seq_scan` (a sequential
//! scan of a large table that keeps few of its rows, partitions of one
//! table counted together, with the index that would serve the filter and
//! any ORDER BY above it) and `filter_after_index` (an index scan whose
//! filter throws most of what the index found away).

use crate::doctor::catalog::Catalog;
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::fixes::index_fix;
use crate::doctor::index::SortColumn;
use crate::doctor::numbers::{count, percent};
use crate::doctor::plan::{Buffers, Node};
use crate::doctor::predicate;

/// A table this large or larger is worth an index (rows).
pub const LARGE_TABLE_ROWS: f64 = 10_000.0;
/// A scan returning at most this fraction of what it reads is selective.
pub const SELECTIVE_FRACTION: f64 = 0.1;

/// Scans grouped by the table an index would go on (a partition's root).
pub(super) fn group_by_table<'a>(scans: &[Node<'a>], catalog: &Catalog) -> Vec<Vec<Node<'a>>> {
    let mut groups: Vec<(String, Vec<Node<'a>>)> = Vec::new();
    for scan in scans {
        let key = scan.relation().unwrap_or_default();
        let target = catalog.target(&key).map_or(key, |t| t.display_name());
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

pub(super) fn seq_scan(members: &[Node], ancestors: &[Node], catalog: &Catalog) -> Option<Finding> {
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
        format!("{} partitions of {}", members.len(), target.display_name())
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
    let (fix, sql, wanted) = index_fix(target, &terms, &sort, filter, alias);
    let mut finding = Finding::at(Kind::SeqScan, first, problem, fix, sql).creating(target, wanted);
    if members.len() > 1 {
        finding.node = format!("Seq Scan on {where_}");
        finding.relation = Some(target.display_name());
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

/// An index scan whose filter discards most of the rows the index found.
pub(super) fn filter_after_index(node: &Node, catalog: &Catalog) -> Option<Finding> {
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
    let (fix, sql, wanted) = index_fix(target, &terms, &[], filter, alias);
    let problem = format!(
        "{} finds {} rows through the index, then its filter discards {} of them ({}); filter: {}",
        node.label(),
        count((returned + removed) * loops),
        count(removed * loops),
        percent(removed, returned + removed),
        predicate::unqualify(filter, alias)
    );
    Some(Finding::at(Kind::FilterAfterIndex, node, problem, fix, sql).creating(target, wanted))
}
