//! Why `tally explain` or `tally doctor` failed: [`DoctorError`]. The
//! statement's own errors (what to change in it or in `--set`) are told
//! apart from the database failing; the command's error type maps each to its exit
//! code (2 for the statement or arguments, 1 for runtime failures).

use super::ExplainOptions;

/// Why the doctor could not examine a statement or audit the indexes.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A `--set` argument that is not NAME=VALUE.
    #[error("--set takes NAME=VALUE (e.g. --set work_mem=64MB), not `{0}`")]
    SettingSyntax(String),
    /// PostgreSQL refused a `--set` setting; `reason` in its words.
    #[error("--set {name}={value}: {reason}")]
    SettingRefused { name: String, value: String, reason: String },
    #[error("no statement to explain: pass it as an argument, or with --file FILE|-")]
    NoStatement,
    #[error("tally explain takes one statement; run each statement separately")]
    SeveralStatements,
    #[error(
        "the statement has parameters ($1, ...): tally explain runs it as written, so put constants where the \
         parameters are"
    )]
    Parameters,
    /// A parameter reference PostgreSQL cannot resolve (42P02), in its words.
    #[error("{0}; tally explain runs the statement as written: put constants where the parameters are")]
    UndefinedParameter(String),
    /// The statement's own error (syntax, data, constraint, raised
    /// exception, unsupported feature), in PostgreSQL's words.
    #[error("the statement failed: {0}")]
    StatementFailed(String),
    /// The statement ran past its time limit (`limit`: which one, in words).
    #[error(
        "explain: the statement ran longer than the {limit} and was cancelled (nothing was kept); allow more \
         time, or plan it only with --no-analyze"
    )]
    Timeout { limit: String },
    /// EXPLAIN returned something other than a plan.
    #[error("explain: {0}")]
    UnexpectedPlan(&'static str),
    /// A database error while doing `context`, described with its SQLSTATE.
    #[error("{context}: {reason}")]
    Database { context: &'static str, reason: String },
    /// `tally doctor --workload` cannot run here (no pg_stat_statements or
    /// hypopg): what is missing and how to add it.
    #[error("tally doctor --workload: {0}")]
    WorkloadUnavailable(String),
}

impl DoctorError {
    /// A database error while doing `context`.
    pub fn database(context: &'static str, error: &sqlx::Error) -> DoctorError {
        DoctorError::Database { context, reason: crate::db::describe(error) }
    }

    /// PostgreSQL refused `--set name=value`.
    pub fn setting_refused(name: &str, value: &str, error: &sqlx::Error) -> DoctorError {
        DoctorError::SettingRefused { name: name.into(), value: value.into(), reason: crate::db::describe(error) }
    }

    /// What running the statement under EXPLAIN failed with: the statement's
    /// own errors say what to change; the rest are runtime failures.
    pub fn from_statement(error: &sqlx::Error, options: &ExplainOptions) -> DoctorError {
        let described = crate::db::describe(error);
        let code = error.as_database_error().and_then(|d| d.code()).map(|c| c.to_string()).unwrap_or_default();
        match code.as_str() {
            "42601" if described.contains("multiple commands") => DoctorError::SeveralStatements,
            "08P01" if described.contains("bind message supplies") => DoctorError::Parameters,
            "42P02" => DoctorError::UndefinedParameter(described),
            "57014" => {
                let limit = match options.settings.iter().find(|(name, _)| name == "statement_timeout") {
                    Some((_, value)) => format!("statement_timeout {value} given with --set"),
                    None => format!("{} timeout (--timeout)", humantime::format_duration(options.timeout)),
                };
                DoctorError::Timeout { limit }
            }
            // The statement's own errors: syntax, data, constraints, raised exceptions, unsupported features.
            c if ["42", "22", "23", "P0", "0A"].iter().any(|class| c.starts_with(class)) => {
                DoctorError::StatementFailed(described)
            }
            _ => DoctorError::Database { context: "running the statement under EXPLAIN", reason: described },
        }
    }
}
