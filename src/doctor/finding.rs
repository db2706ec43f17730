//! What `tally explain` reports: a [`Finding`] is one warning sign, the plan
//! node it is at, its numbers, and the fix; [`Kind`] names the sign (the
//! `kind` of `--json`). The detectors in [`super::detect`] build them;
//! [`super::render`] prints them. The index audit has its own
//! ([`super::audit::AuditFinding`]).

use serde::Serialize;

use super::catalog::Table;
use super::index::Wanted;
use super::plan::{Buffers, Node};

/// Which warning sign a finding is. Serialized in snake_case (the `kind` of `--json`).
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
        }
    }
}

/// One warning sign in a plan, where it is, its numbers, and what fixes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The plan node (`Seq Scan on marketing.clicks`).
    pub node: String,
    /// `schema.table` the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
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
    /// The indexes `sql` creates, on which table (`schema.name`): candidates
    /// for verification.
    #[serde(skip)]
    pub(super) creates: Vec<(String, Wanted)>,
}

impl Finding {
    pub(super) fn at(kind: Kind, node: &Node, problem: String, fix: String, sql: Vec<String>) -> Finding {
        let loops = node.loops();
        Finding {
            kind,
            node: node.label(),
            relation: node.relation(),
            estimated_rows: Some(node.plan_rows() * loops.unwrap_or(1.0).max(1.0)),
            actual_rows: node.actual_rows().map(|r| r * loops.unwrap_or(1.0)),
            loops,
            time_ms: node.total_time_ms(),
            buffers: node.buffers(),
            problem,
            fix,
            sql,
            creates: Vec::new(),
        }
    }

    /// The same finding, recording the indexes its fix creates on `table`.
    pub(super) fn creating(mut self, table: &Table, wanted: Vec<Wanted>) -> Finding {
        self.creates = wanted.into_iter().map(|w| (table.display_name(), w)).collect();
        self
    }
}
