//! The error a command ends with, and its exit code: 2 for usage and
//! configuration problems (fix the input), 1 for runtime failures (the
//! database, the network, a refresh). Module errors convert into it.

use crate::config::ConfigError;
use crate::db::{ClusterError, DbError, UrlError};
use crate::doctor::DoctorError;

/// Why a command failed. Its text says what failed, on which object, and
/// what to do; it is printed once, by `main`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Select(#[from] crate::refresh::policy::SelectError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Doctor(#[from] DoctorError),
    #[error("{context}: {reason}")]
    Runtime { context: String, reason: String },
    /// A second SIGTERM/SIGINT cut the graceful stop short.
    #[error(
        "stopped at once by a second signal: running work was abandoned and its transactions roll back; \
         aggregates keep their last good contents"
    )]
    Forced,
}

impl Error {
    /// A runtime failure while doing `context`.
    pub fn runtime(context: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Runtime { context: context.into(), reason: reason.into() }
    }

    /// A database error while doing `context`, described with its SQLSTATE.
    pub fn database(context: impl Into<String>, error: &sqlx::Error) -> Error {
        Error::runtime(context, crate::db::describe(error))
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Url(_) | Error::Usage(_) | Error::Select(_) => 2,
            Error::Database(_) | Error::Cluster(_) | Error::Runtime { .. } => 1,
            Error::Doctor(e) => doctor_exit_code(e),
            // 128 + SIGINT, as shells report an interrupted command.
            Error::Forced => 130,
        }
    }
}

/// `tally explain` and `tally doctor`: 2 when the statement or an argument
/// must change, 1 when the database failed or cancelled the statement.
fn doctor_exit_code(error: &DoctorError) -> u8 {
    match error {
        DoctorError::SettingSyntax(_)
        | DoctorError::SettingRefused { .. }
        | DoctorError::NoStatement
        | DoctorError::SeveralStatements
        | DoctorError::Parameters
        | DoctorError::UndefinedParameter(_)
        | DoctorError::StatementFailed(_) => 2,
        DoctorError::Timeout { .. } | DoctorError::UnexpectedPlan(_) | DoctorError::Database { .. } => 1,
    }
}
