//! Detectors that look at memory: `spill`, a sort or hash that did not fit
//! in `work_mem` and went to disk, with the `work_mem` that would hold it.

use crate::doctor::finding::{Finding, Kind};
use crate::doctor::numbers::count;
use crate::doctor::plan::Node;

/// A sort or hash of `node` that spilled to disk.
pub(super) fn spill(node: &Node) -> Option<Finding> {
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
