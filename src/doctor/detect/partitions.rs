//! Detectors that look at partitioned tables: `partitions_not_pruned`, an
//! Append reading every partition although the query filters on the
//! partition key, with the rewrite that lets PostgreSQL skip partitions.

use crate::doctor::catalog::Catalog;
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::fixes::no_index_reason;
use crate::doctor::plan::Node;
use crate::doctor::predicate::{self, Term};

/// An Append (`node`) that scans every partition despite a filter on the key.
pub(super) fn partitions_not_pruned(node: &Node, catalog: &Catalog) -> Option<Finding> {
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
