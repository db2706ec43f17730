//! What the index audit reports: an [`AuditFinding`] is one index, what is
//! wrong with it (or, for tally's own, what it serves) and the statements
//! that drop or repair it; [`AuditKind`] names the problem. In `--json` it
//! has the fields of `tally explain`'s findings that apply to an index
//! (`kind`, `relation`, `index`, `problem`, `fix`, `sql`).

use serde::Serialize;

/// What an audit finding is about. Serialized in snake_case (the `kind` of `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    UnusedIndex,
    DuplicateIndex,
    RedundantIndex,
    InvalidIndex,
    /// A note about one of tally's own indexes (what it serves), never a drop.
    TallyIndex,
}

impl AuditKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditKind::UnusedIndex => "unused_index",
            AuditKind::DuplicateIndex => "duplicate_index",
            AuditKind::RedundantIndex => "redundant_index",
            AuditKind::InvalidIndex => "invalid_index",
            AuditKind::TallyIndex => "tally_index",
        }
    }
}

/// One index, what is wrong with it, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditFinding {
    pub kind: AuditKind,
    /// `schema.table` of the index (`relation` in `--json`, as in `tally explain`).
    #[serde(rename = "relation")]
    pub table: String,
    /// `schema.index`.
    pub index: String,
    /// What is wrong, with the numbers.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
    /// Statements that apply the fix, in order (empty for tally's own indexes
    /// unless they need a rebuild).
    pub sql: Vec<String>,
}
