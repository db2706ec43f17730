//! A read-only view of one node of an `EXPLAIN (FORMAT JSON)` plan.

use serde::Serialize;
use serde_json::Value;

/// One plan node and the path to it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    raw: &'a Value,
}

/// Buffer counts of a node (its own and its children's), in 8 kB blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Buffers {
    pub shared_hit: u64,
    pub shared_read: u64,
    pub temp_read: u64,
    pub temp_written: u64,
}

impl<'a> Node<'a> {
    pub fn new(raw: &'a Value) -> Node<'a> {
        Node { raw }
    }

    /// Whether both are the same node of the same plan.
    pub fn is(&self, other: &Node) -> bool {
        std::ptr::eq(self.raw, other.raw)
    }

    fn text(&self, key: &str) -> Option<&'a str> {
        self.raw.get(key).and_then(Value::as_str)
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.raw.get(key).and_then(Value::as_f64)
    }

    fn list(&self, key: &str) -> Vec<&'a str> {
        self.raw.get(key).and_then(Value::as_array).map_or(Vec::new(), |a| a.iter().filter_map(Value::as_str).collect())
    }

    pub fn node_type(&self) -> &'a str {
        self.text("Node Type").unwrap_or("?")
    }

    /// `schema.relation` of a scan.
    pub fn relation(&self) -> Option<String> {
        let name = self.text("Relation Name")?;
        Some(format!("{}.{name}", self.text("Schema").unwrap_or("public")))
    }

    /// The name columns are qualified with in this node's conditions.
    pub fn alias(&self) -> Option<&'a str> {
        self.text("Alias").or(self.text("Relation Name"))
    }

    pub fn index_name(&self) -> Option<&'a str> {
        self.text("Index Name")
    }

    pub fn filter(&self) -> Option<&'a str> {
        self.text("Filter")
    }

    pub fn join_filter(&self) -> Option<&'a str> {
        self.text("Join Filter")
    }

    /// The conditions an index or bitmap scan looked up.
    pub fn index_cond(&self) -> Option<&'a str> {
        self.text("Index Cond").or(self.text("Recheck Cond"))
    }

    pub fn parent_relationship(&self) -> Option<&'a str> {
        self.text("Parent Relationship")
    }

    /// Estimated rows per loop.
    pub fn plan_rows(&self) -> f64 {
        self.number("Plan Rows").unwrap_or(0.0)
    }

    /// Actual rows per loop (`None` without ANALYZE, or for a node never run).
    pub fn actual_rows(&self) -> Option<f64> {
        self.number("Actual Rows").filter(|_| self.loops().is_some_and(|l| l > 0.0))
    }

    pub fn loops(&self) -> Option<f64> {
        self.number("Actual Loops")
    }

    pub fn rows_removed_by_filter(&self) -> f64 {
        self.number("Rows Removed by Filter").unwrap_or(0.0)
    }

    pub fn rows_removed_by_join_filter(&self) -> f64 {
        self.number("Rows Removed by Join Filter").unwrap_or(0.0)
    }

    /// Milliseconds spent in the node and its children over all loops.
    pub fn total_time_ms(&self) -> Option<f64> {
        Some(self.number("Actual Total Time")? * self.loops().unwrap_or(1.0))
    }

    pub fn buffers(&self) -> Option<Buffers> {
        let count = |key: &str| self.number(key).map(|n| n as u64);
        Some(Buffers {
            shared_hit: count("Shared Hit Blocks")?,
            shared_read: count("Shared Read Blocks").unwrap_or(0),
            temp_read: count("Temp Read Blocks").unwrap_or(0),
            temp_written: count("Temp Written Blocks").unwrap_or(0),
        })
    }

    pub fn sort_keys(&self) -> Vec<&'a str> {
        self.list("Sort Key")
    }

    pub fn group_keys(&self) -> Vec<&'a str> {
        self.list("Group Key")
    }

    /// Whether the node groups by GROUPING SETS, ROLLUP or CUBE.
    pub fn has_grouping_sets(&self) -> bool {
        self.raw.get("Grouping Sets").is_some()
    }

    /// The values the node emits (VERBOSE): columns, expressions, aggregate calls.
    pub fn output(&self) -> Vec<&'a str> {
        self.list("Output")
    }

    /// `Partial` or `Finalize` for the two halves of a parallel aggregate, `Simple` otherwise.
    pub fn partial_mode(&self) -> Option<&'a str> {
        self.text("Partial Mode")
    }

    /// kB a sort wrote to disk (`Sort Space Type: Disk`).
    pub fn sort_spill_kb(&self) -> Option<f64> {
        (self.text("Sort Space Type") == Some("Disk")).then(|| self.number("Sort Space Used").unwrap_or(0.0))
    }

    pub fn sort_method(&self) -> Option<&'a str> {
        self.text("Sort Method")
    }

    /// A hash (join or aggregate) that split into batches on disk: the
    /// batches and the memory it wanted, in kB.
    pub fn hash_spill(&self) -> Option<(f64, f64)> {
        let batches = self.number("Hash Batches").or(self.number("HashAgg Batches"))?;
        let disk = self.number("Disk Usage").unwrap_or(0.0);
        let wanted = self.number("Peak Memory Usage").unwrap_or(0.0) + disk;
        (batches > 1.0).then_some((batches, wanted))
    }

    /// How many partitions run-time pruning removed from an Append.
    pub fn subplans_removed(&self) -> f64 {
        self.number("Subplans Removed").unwrap_or(0.0)
    }

    pub fn children(&self) -> Vec<Node<'a>> {
        self.raw
            .get("Plans")
            .and_then(Value::as_array)
            .map_or(Vec::new(), |plans| plans.iter().map(Node::new).collect())
    }

    /// This node and every node below it, depth first.
    pub fn descendants(&self) -> Vec<Node<'a>> {
        let mut all = vec![*self];
        for child in self.children() {
            all.extend(child.descendants());
        }
        all
    }

    pub fn is_scan(&self) -> bool {
        self.relation().is_some()
    }

    /// `Seq Scan on marketing.clicks`, `Index Scan Backward using x on marketing.y`, `Sort`.
    pub fn label(&self) -> String {
        // ModifyTable says what it does in `Operation` (Insert, Update, Delete, Merge).
        let kind = match self.node_type() {
            "ModifyTable" => self.text("Operation").unwrap_or("ModifyTable"),
            other => other,
        };
        // As EXPLAIN's text format says it: an index walked from its end.
        let backward = if self.text("Scan Direction") == Some("Backward") { " Backward" } else { "" };
        match (self.relation(), self.index_name()) {
            (Some(relation), Some(index)) => format!("{kind}{backward} using {index} on {relation}"),
            (Some(relation), None) => format!("{kind} on {relation}"),
            _ => kind.to_string(),
        }
    }
}
