//! What bringing an aggregate up to date did, and why it could fail.

/// What a refresh had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// The aggregate did not exist; it was created and populated.
    Built,
    /// The definition or the mode changed; a new relation replaced the old one.
    Rebuilt,
    /// The materialized view existed unpopulated and was populated.
    Populated,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY` (or, for a view, nothing to do).
    Refreshed,
    /// Incremental mode: the dirty days were rewritten.
    Incremental,
}

impl RefreshKind {
    /// The word used in logs and command output.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshKind::Built => "built",
            RefreshKind::Rebuilt => "rebuilt",
            RefreshKind::Populated => "populated",
            RefreshKind::Refreshed => "refreshed",
            RefreshKind::Incremental => "incremental",
        }
    }
}

/// Why an aggregate could not be brought up to date, beyond plain database errors.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error(
        "reporting.{name} exists but is not what tally builds (relkind `{relkind}`); \
         drop or rename it so tally can create the aggregate"
    )]
    WrongKind { name: &'static str, relkind: String },
    #[error("reporting.{name} reads {}, which must be built first", inputs.join(", "))]
    InputsMissing { name: &'static str, inputs: &'static [&'static str] },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
