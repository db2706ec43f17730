//! Detectors that look at joins: `nested_loop`, a Nested Loop comparing
//! many row pairs through a sequential scan on its inner side, with the
//! index that could drive the loop (or why none can).

use crate::doctor::catalog::Catalog;
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::fixes::index_fix;
use crate::doctor::numbers::count;
use crate::doctor::plan::Node;
use crate::doctor::predicate::{self, Term};

/// A nested loop running its inner side this often...
pub const NESTED_LOOP_LOOPS: f64 = 100.0;
/// ...or comparing this many row pairs, is a warning sign.
pub const NESTED_LOOP_ROWS: f64 = 100_000.0;

/// A Nested Loop (`node`) comparing many row pairs through a Seq Scan.
pub(super) fn nested_loop(node: &Node, catalog: &Catalog) -> Option<Finding> {
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
    if let Some((relation, fix, sql, wanted)) = driving_index(node, [inner, outer], &inner_scan, catalog) {
        let target = catalog.target(&relation);
        let mut finding = Finding::at(Kind::NestedLoop, node, problem, fix, sql);
        if let Some(target) = target {
            finding = finding.creating(target, wanted);
        }
        finding.relation = Some(relation);
        return Some(finding);
    }
    let fix = "the join condition compares no plain column with =, so no index can drive the loop; rewrite it as \
               column = expression"
        .to_string();
    let mut finding = Finding::at(Kind::NestedLoop, node, problem, fix, Vec::new());
    finding.relation = Some(key);
    Some(finding)
}

/// The index that could drive the loop: on a plain column compared with =
/// to the other side, on either side of the join (`sides`: inner, outer).
/// Returns the table it goes on, the fix, its SQL and the indexes it creates.
fn driving_index(
    node: &Node,
    sides: [&Node; 2],
    inner_scan: &Node,
    catalog: &Catalog,
) -> Option<(String, String, Vec<String>, Vec<crate::doctor::index::Wanted>)> {
    for side in sides {
        for scan in side.descendants().into_iter().filter(|n| n.node_type() == "Seq Scan") {
            let (Some(alias), Some(relation)) = (scan.alias(), scan.relation()) else { continue };
            let Some(target) = catalog.target(&relation) else { continue };
            let mut terms: Vec<Term> = node.join_filter().map_or(Vec::new(), |f| predicate::terms(f, alias));
            if scan.is(inner_scan) {
                terms.extend(inner_scan.filter().map_or(Vec::new(), |f| predicate::terms(f, alias)));
            }
            if terms.iter().any(|t| matches!(t, Term::Join { op, .. } if op == "=")) {
                let (fix, sql, wanted) = index_fix(target, &terms, &[], "", alias);
                return Some((relation, fix, sql, wanted));
            }
        }
    }
    None
}
