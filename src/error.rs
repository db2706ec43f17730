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
        | DoctorError::StatementFailed(_)
        | DoctorError::WorkloadUnavailable(_) => 2,
        DoctorError::Timeout { .. } | DoctorError::UnexpectedPlan(_) | DoctorError::Database { .. } => 1,
    }
}

#[cfg(test)]
mod tests {
    //! How the doctor's errors map to exit codes and messages.
    use super::Error;
    use crate::doctor::DoctorError;

    #[test]
    fn the_statement_s_errors_exit_2_and_the_database_s_exit_1() {
        let usage = [
            DoctorError::SettingSyntax("work_mem".into()),
            DoctorError::SettingRefused { name: "work_mem".into(), value: "x".into(), reason: "invalid".into() },
            DoctorError::NoStatement,
            DoctorError::SeveralStatements,
            DoctorError::Parameters,
            DoctorError::UndefinedParameter("there is no parameter $1".into()),
            DoctorError::StatementFailed("division by zero".into()),
        ];
        for error in usage {
            assert_eq!(Error::from(error).exit_code(), 2);
        }
        let runtime = [
            DoctorError::Timeout { limit: "1m timeout (--timeout)".into() },
            DoctorError::UnexpectedPlan("PostgreSQL returned an empty plan"),
            DoctorError::Database { context: "reading the indexes", reason: "connection reset".into() },
        ];
        for error in runtime {
            assert_eq!(Error::from(error).exit_code(), 1);
        }
    }

    #[test]
    fn messages_name_what_failed_and_what_to_do() {
        let text = |e: DoctorError| Error::from(e).to_string();
        assert_eq!(
            text(DoctorError::SettingSyntax("foo".into())),
            "--set takes NAME=VALUE (e.g. --set work_mem=64MB), not `foo`"
        );
        assert_eq!(
            text(DoctorError::SettingRefused { name: "work_mem".into(), value: "abc".into(), reason: "bad".into() }),
            "--set work_mem=abc: bad"
        );
        assert_eq!(
            text(DoctorError::Timeout { limit: "statement_timeout 10ms given with --set".into() }),
            "explain: the statement ran longer than the statement_timeout 10ms given with --set and was cancelled \
             (nothing was kept); allow more time, or plan it only with --no-analyze"
        );
        assert_eq!(text(DoctorError::UnexpectedPlan("the plan has no `Plan`")), "explain: the plan has no `Plan`");
        assert_eq!(
            text(DoctorError::Database { context: "reading the indexes", reason: "gone (SQLSTATE 57P01)".into() }),
            "reading the indexes: gone (SQLSTATE 57P01)"
        );
    }
}
