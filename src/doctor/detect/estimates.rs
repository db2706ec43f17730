//! Detectors that look at the planner's row estimates: `misestimate`, a
//! node whose estimate is off by 10x or more, reported where the error
//! starts (not at the nodes that inherit it), with the statistics that fix it.

use crate::doctor::catalog::Catalog;
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::fixes::statistics_fix;
use crate::doctor::numbers::count;
use crate::doctor::plan::Node;

/// Estimates off by this factor (either way) mislead the planner...
pub const MISESTIMATE_FACTOR: f64 = 10.0;
/// ...when the larger side has at least this many rows.
pub const MISESTIMATE_MIN_ROWS: f64 = 100.0;

/// Nodes whose estimate is off by 10x or more and whose inputs are not
/// (the root cause, not the nodes that inherit it). Returns whether `node`
/// or a node below it was reported.
pub(super) fn misestimates(node: &Node, under_limit: bool, catalog: &Catalog, findings: &mut Vec<Finding>) -> bool {
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
