//! The fixes findings suggest: the index a filter needs (following the
//! brief's indexing table), the rewrite that lets a cast column use one, and
//! the statistics a misestimate needs.

use super::catalog::{Catalog, Table};
use super::index::{self, SortColumn, Wanted};
use super::plan::Node;
use super::predicate::{self, Term};

/// The fix for conditions with no usable index: the index to create (or
/// ANALYZE when one exists, or REINDEX when it is invalid), or why none can
/// help; and the indexes it creates (for verification).
pub(super) fn index_fix(
    target: &Table,
    terms: &[Term],
    sort: &[SortColumn],
    filter: &str,
    alias: &str,
) -> (String, Vec<String>, Vec<Wanted>) {
    // A cast column that can be compared as a range: the rewrite comes first,
    // and the index serves the rewritten query.
    let mut advice = Vec::new();
    let mut usable: Vec<Term> = Vec::new();
    for term in terms {
        match term {
            Term::Wrapped { column, cast, op, value } => match range_rewrite(column, cast.as_deref(), op, value) {
                Some(rewrite) => {
                    advice.push(format!("compare {column} itself instead of casting it: {rewrite}"));
                    usable.push(Term::Range { column: column.clone() });
                }
                None => usable.push(term.clone()),
            },
            other => usable.push(other.clone()),
        }
    }
    let terms = usable.as_slice();
    let wanted = index::wanted(terms, sort);
    if wanted.is_empty() {
        return (no_index_reason(terms, filter, alias), Vec::new(), Vec::new());
    }
    let mut sql = Vec::new();
    let mut created = Vec::new();
    for want in &wanted {
        match index::existing(target, want) {
            Some(existing) if existing.valid => {
                advice.push(format!(
                    "{} already serves this but was not chosen: refresh the statistics (ANALYZE) and check the \
                     estimate",
                    existing.name
                ));
                sql.push(format!("ANALYZE {};", target.sql_name()));
            }
            Some(existing) if target.is_partitioned() => advice.push(format!(
                "{} would serve this but is INVALID: partitions lack their index; `tally doctor` prints the \
                 statements that build and attach them",
                existing.name
            )),
            Some(existing) => {
                advice.push(format!(
                    "{} would serve this but is INVALID (an interrupted CREATE INDEX CONCURRENTLY): rebuild it",
                    existing.name
                ));
                sql.push(format!("REINDEX INDEX CONCURRENTLY {};", existing.name));
            }
            None => {
                advice.push(describe(want, target));
                sql.extend(index::create_statements(target, want));
                created.push(want.clone());
            }
        }
    }
    sql.dedup();
    (advice.join("; "), sql, created)
}

pub(super) fn describe(want: &Wanted, target: &Table) -> String {
    let what = match (want.method, &want.predicate) {
        ("gin", _) if want.keys[0].contains("jsonb_path_ops") => {
            "a GIN index with jsonb_path_ops (serves @> containment)".to_string()
        }
        ("gin", _) if want.key_names[0] == "fts" => "a GIN index on the tsvector expression".to_string(),
        ("gin", _) => "a GIN index (serves the ? key-exists operators)".to_string(),
        (_, Some(p)) => format!("a partial B-tree index for the constant predicate {p}"),
        _ if want.keys.len() > 1 => "a composite B-tree index: equality columns first, then the range or ORDER BY \
                                     columns"
            .to_string(),
        _ => "a B-tree index".to_string(),
    };
    let partitioned = if target.is_partitioned() {
        " (on a partitioned table: built ON ONLY the parent, then concurrently per partition and attached)"
    } else {
        ""
    };
    format!("add {what} on {} ({}){partitioned}", target.display_name(), want.keys.join(", "))
}

/// Why no index can serve `filter`, and the rewrite that would let one.
pub(super) fn no_index_reason(terms: &[Term], filter: &str, alias: &str) -> String {
    for term in terms {
        if let Term::Wrapped { column, cast, op, value } = term {
            if let Some(rewrite) = range_rewrite(column, cast.as_deref(), op, value) {
                return format!(
                    "the filter casts {column} before comparing, so no index on {column} can serve it; compare the \
                     column itself: {rewrite}"
                );
            }
            return format!(
                "the filter wraps {column} in a function or cast, so no index on {column} can serve it; compare the \
                 column itself with constants, or index the expression"
            );
        }
    }
    format!(
        "no index shape serves this filter ({}); rewrite it as column comparisons with constants",
        predicate::unqualify(filter, alias)
    )
}

/// `col >= 'D' AND col < 'D+1'` for `(col)::date = 'D'::date`.
pub(super) fn range_rewrite(column: &str, cast: Option<&str>, op: &str, value: &str) -> Option<String> {
    if cast != Some("date") || op != "=" {
        return None;
    }
    let column = crate::db::sql::quote_ident_if_needed(column);
    let literal = value.trim().strip_prefix('\'').and_then(|v| v.split('\'').next());
    match literal.and_then(|day| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()) {
        Some(day) => Some(format!("{column} >= '{day}' AND {column} < '{}'", day.succ_opt()?)),
        // An expression (CURRENT_DATE - 1): the same day boundaries, computed.
        None if literal.is_none() => {
            let value = value.trim();
            Some(format!("{column} >= {value} AND {column} < {value} + 1"))
        }
        None => None,
    }
}

/// ANALYZE the tables below `node`, and extended statistics when a scan
/// filters on several columns of one table (correlated columns).
pub(super) fn statistics_fix(node: &Node, catalog: &Catalog) -> (String, Vec<String>) {
    let scans: Vec<Node> = node.descendants().into_iter().filter(|n| n.is_scan()).collect();
    let mut sql = Vec::new();
    let mut fix = "refresh the planner statistics (ANALYZE)".to_string();
    if let [scan] = scans.as_slice()
        && let (Some(table), Some(alias)) = (scan.relation().and_then(|r| catalog.table(&r)), scan.alias())
    {
        let mut columns: Vec<String> = Vec::new();
        for condition in [scan.index_cond(), scan.filter()].into_iter().flatten() {
            for term in predicate::terms(condition, alias) {
                if let Term::Equality { column } | Term::Range { column } = term
                    && !columns.contains(&column)
                {
                    columns.push(column);
                }
            }
        }
        if columns.len() >= 2 {
            columns.truncate(8);
            let name = crate::db::sql::quote_ident_if_needed(&format!("{}_{}_stats", table.name, columns.join("_")));
            let list = columns.iter().map(|c| crate::db::sql::quote_ident_if_needed(c)).collect::<Vec<_>>().join(", ");
            sql.push(format!(
                "CREATE STATISTICS IF NOT EXISTS {}.{name} (dependencies, ndistinct, mcv) ON {list} FROM {};",
                crate::db::sql::quote_ident_if_needed(&table.schema),
                table.sql_name()
            ));
            fix = format!(
                "the planner multiplies the selectivities of {} as if independent: create extended statistics on \
                 them, then ANALYZE",
                columns.join(" and ")
            );
        }
    }
    for scan in &scans {
        if let Some(target) = scan.relation().and_then(|r| catalog.target(&r)) {
            let statement = format!("ANALYZE {};", target.sql_name());
            if !sql.contains(&statement) {
                sql.push(statement);
            }
        }
    }
    (fix, sql)
}
