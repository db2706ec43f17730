//! What the doctor reports: a [`Finding`] is one warning sign, where it is
//! (plan node or index), its numbers, and the fix; [`Kind`] names the sign
//! (the `kind` of `--json`). The detectors in [`super::detect`] and the index
//! audit ([`super::audit`]) build them; [`super::render`] prints them.

use serde::Serialize;

use super::plan::{Buffers, Node};

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
