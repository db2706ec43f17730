//! Candidate indexes for one statement, for [`super::verify`] to try: from
//! how the statement uses each table ([`super::statement`]) and from the
//! conditions its plan's scans print ([`super::predicate`]).
//!
//! Per table: each equality, range and join column alone; the equality
//! columns followed by the ORDER BY columns in the query's direction, or by
//! its first range column; a partial index for each constant predicate the
//! plan shows (`status <> 'done'`, `deleted_at IS NULL`: an equality with a
//! literal is a value that varies, a dashboard variable, never a partial
//! index's predicate); the best composite with
//! the selected columns as INCLUDE, when that could make the scan index-only;
//! and GIN `jsonb_path_ops` for `@>`. Shapes an existing valid index already
//! serves are left out.

use super::catalog::{Catalog, Table};
use super::finding::Finding;
use super::index::{self, Wanted};
use super::plan::Node;
use super::predicate;
use super::statement::TableUse;
use crate::db::sql::quote_ident_if_needed;

/// One index to try on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The catalog key (`schema.name`) of the table it is on (the
    /// partitioned root for a partition).
    pub table: String,
    pub wanted: Wanted,
}

/// Every candidate for the statement, deduplicated, in the order generated:
/// the indexes the findings suggest first, then the statement's shapes, then
/// the plan's.
pub fn generate(uses: &[TableUse], plan: &Node, catalog: &Catalog, findings: &[Finding]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut add = |table: &Table, wanted: Wanted| {
        let key = format!("{}.{}", table.schema, table.name);
        let candidate = Candidate { table: key, wanted };
        if !out.contains(&candidate) && index::existing(table, &candidate.wanted).is_none_or(|i| !i.valid) {
            out.push(candidate);
        }
    };
    for (key, wanted) in findings.iter().flat_map(|f| &f.creates) {
        if let Some(table) = catalog.table(key) {
            add(table, wanted.clone());
        }
    }
    for usage in uses {
        let Some(table) = resolve(catalog, &usage.name) else { continue };
        for wanted in from_usage(usage) {
            add(table, wanted);
        }
    }
    // What the plan's own scans filter on (covers tables the statement
    // reaches through views, which the statement does not name).
    for scan in std::iter::once(*plan).chain(plan.descendants()).filter(|n| n.is_scan()) {
        let (Some(relation), Some(alias)) = (scan.relation(), scan.alias()) else { continue };
        let Some(table) = catalog.target(&relation) else { continue };
        let mut terms = Vec::new();
        for condition in [scan.index_cond(), scan.filter()].into_iter().flatten() {
            terms.extend(predicate::terms(condition, alias));
        }
        for wanted in index::wanted(&terms, &[]) {
            add(table, wanted);
        }
    }
    out
}

/// The catalog table a statement names (`marketing.leads`, or `leads`
/// found by name among the tables the plan reads).
fn resolve<'a>(catalog: &'a Catalog, name: &str) -> Option<&'a Table> {
    if let Some(table) = catalog.target(name) {
        return Some(table);
    }
    let bare = name.rsplit('.').next().unwrap_or(name);
    let key = catalog.tables.iter().find(|(_, t)| t.name == bare && (name == bare || t.display_name() == name))?.0;
    catalog.target(key)
}

fn btree(columns: &[(String, bool)], predicate: Option<String>, include: Vec<String>) -> Wanted {
    Wanted {
        method: "btree",
        keys: columns
            .iter()
            .map(|(c, desc)| format!("{}{}", quote_ident_if_needed(c), if *desc { " DESC" } else { "" }))
            .collect(),
        key_names: columns.iter().map(|(c, _)| c.clone()).collect(),
        predicate,
        include,
    }
}

/// The shapes for one table's use, most specific last.
fn from_usage(usage: &TableUse) -> Vec<Wanted> {
    let asc = |c: &String| (c.clone(), false);
    let mut shapes: Vec<Wanted> = Vec::new();
    for column in usage.equality.iter().chain(&usage.range).chain(&usage.joins) {
        shapes.push(btree(&[asc(column)], None, Vec::new()));
    }
    let equality: Vec<(String, bool)> = usage.equality.iter().map(asc).collect();
    // Equality columns first, then the ORDER BY columns in their direction
    // (when the sort is on this table), else the first range column.
    let tail: Vec<(String, bool)> = match (usage.order.is_empty(), usage.range.first()) {
        (false, _) => usage.order.clone(),
        (true, Some(range)) => vec![asc(range)],
        (true, None) => Vec::new(),
    };
    let compose = |skip: Option<&str>| -> Vec<(String, bool)> {
        let mut keys: Vec<(String, bool)> =
            equality.iter().filter(|(c, _)| Some(c.as_str()) != skip).cloned().collect();
        for (column, desc) in &tail {
            if !keys.iter().any(|(c, _)| c == column) {
                keys.push((column.clone(), *desc));
            }
        }
        keys
    };
    let best = compose(None);
    if best.len() > 1 || (best.len() == 1 && !usage.order.is_empty()) {
        shapes.push(btree(&best, None, Vec::new()));
    }
    if !equality.is_empty()
        && !usage.order.is_empty()
        && let Some(range) = usage.range.first()
    {
        let mut keys = equality.clone();
        keys.push(asc(range));
        shapes.push(btree(&keys, None, Vec::new()));
    }
    if let Some(selected) = &usage.selected {
        let include: Vec<String> =
            selected.iter().filter(|c| !best.iter().any(|(k, _)| k == *c)).map(|c| quote_ident_if_needed(c)).collect();
        if !best.is_empty() && (1..=4).contains(&include.len()) {
            shapes.push(btree(&best, None, include));
        }
    }
    for column in &usage.contains {
        shapes.push(Wanted {
            method: "gin",
            keys: vec![format!("{} jsonb_path_ops", quote_ident_if_needed(column))],
            key_names: vec![column.clone()],
            predicate: None,
            include: Vec::new(),
        });
    }
    shapes
}

/// `table (keys) INCLUDE (...) WHERE ...` for people.
pub fn describe(candidate: &Candidate) -> String {
    format!("{}{} {}", candidate.table, candidate.wanted.using(), candidate.wanted.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::statement::read;

    #[test]
    fn the_composite_follows_equality_then_the_order_in_its_direction() {
        let usage = &read("SELECT * FROM marketing.leads WHERE score = 997 ORDER BY created_at DESC LIMIT 20")[0];
        let shapes: Vec<Vec<String>> = from_usage(usage).into_iter().map(|w| w.keys).collect();
        assert!(shapes.contains(&vec!["score".to_string()]), "{shapes:?}");
        assert!(shapes.contains(&vec!["score".to_string(), "created_at DESC".to_string()]), "{shapes:?}");
        let usage = &read("SELECT email FROM leads WHERE status = 'new' AND score > 50")[0];
        let shapes = from_usage(usage);
        assert!(shapes.iter().all(|w| w.predicate.is_none()), "no partial index for a literal: {shapes:?}");
        let covering = shapes.iter().find(|w| !w.include.is_empty()).unwrap();
        assert_eq!(
            (covering.keys.clone(), covering.include.clone()),
            (vec!["status".to_string(), "score".to_string()], vec!["email".to_string()])
        );
        let usage = &read("SELECT count(*) FROM marketing.events WHERE properties @> '{\"a\": 1}'")[0];
        assert_eq!(from_usage(usage).last().unwrap().method, "gin");
    }
}
