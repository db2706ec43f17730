//! The plan walk: visits every node of a plan once and hands each to the
//! detectors that look at nodes of its type; the detectors that look at the
//! whole plan (estimates, aggregates) run after it. Findings come back most
//! costly first.

use super::{aggregates, estimates, joins, memory, partitions, scans};
use crate::doctor::catalog::Catalog;
use crate::doctor::finding::Finding;
use crate::doctor::plan::Node;

/// Every warning sign in `plan` (the top node of an EXPLAIN), most costly first.
pub fn analyze(plan: &Node, catalog: &Catalog) -> Vec<Finding> {
    let mut findings = Vec::new();
    walk(plan, &mut Vec::new(), catalog, &mut findings);
    estimates::misestimates(plan, false, catalog, &mut findings);
    aggregates::use_aggregate(plan, catalog, &mut findings);
    findings.sort_by(|a, b| b.time_ms.unwrap_or(0.0).total_cmp(&a.time_ms.unwrap_or(0.0)));
    findings
}

fn walk<'a>(node: &Node<'a>, ancestors: &mut Vec<Node<'a>>, catalog: &Catalog, findings: &mut Vec<Finding>) {
    match node.node_type() {
        "Seq Scan" if !ancestors.last().is_some_and(is_append) => {
            if let Some(f) = scans::seq_scan(&[*node], ancestors, catalog) {
                findings.push(f)
            }
        }
        "Append" | "Merge Append" => {
            let members: Vec<Node> = node.children().into_iter().filter(|c| c.node_type() == "Seq Scan").collect();
            for group in scans::group_by_table(&members, catalog) {
                ancestors.push(*node);
                if let Some(f) = scans::seq_scan(&group, ancestors, catalog) {
                    findings.push(f)
                }
                ancestors.pop();
            }
            findings.extend(partitions::partitions_not_pruned(node, catalog));
        }
        "Index Scan" | "Index Only Scan" | "Bitmap Heap Scan" => {
            findings.extend(scans::filter_after_index(node, catalog))
        }
        "Nested Loop" => findings.extend(joins::nested_loop(node, catalog)),
        _ => {}
    }
    findings.extend(memory::spill(node));
    ancestors.push(*node);
    for child in node.children() {
        walk(&child, ancestors, catalog, findings);
    }
    ancestors.pop();
}

fn is_append(node: &Node) -> bool {
    matches!(node.node_type(), "Append" | "Merge Append")
}
