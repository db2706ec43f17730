//! The database: `DATABASE_URL` ([`url`], [`conninfo`]), connecting with
//! retry and backoff ([`connect`]), migrations and readiness ([`migrate`]),
//! and the classification of PostgreSQL errors (transient or not, and how
//! to say them).

mod cluster;
mod connect;
mod conninfo;
mod migrate;
mod retry;
pub mod sql;
pub mod template;
mod url;

use std::time::Duration;

use sqlx::postgres::PgDatabaseError;

pub use cluster::{ClusterError, EphemeralCluster, with_server};
pub use connect::{CLIENT_CHECK_INTERVAL, connect, connect_reporting, session_options};
pub(crate) use migrate::concurrent_migration_indexes;
pub use migrate::{migrate, readiness};
pub use retry::{Retried, Transient, with_retries};
pub use sql::{execute, quote_ident, quote_literal};
pub use url::{DatabaseUrl, UrlError};

use crate::config::DatabaseConfig;

/// How long to keep trying a database that does not answer.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// The worker: a database that is down now may be up in a minute.
    Forever,
    /// One-shot commands: give up after this long.
    For(Duration),
}

/// Why tally could not reach or prepare the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "could not connect to PostgreSQL at {url} after {} over {waited:?}: {reason}; \
         check that the server is running and that DATABASE_URL points at it",
        plural(*attempts, "attempt")
    )]
    Unreachable { url: String, attempts: u32, waited: Duration, reason: String },
    #[error("PostgreSQL at {url} refused tally's connection: {reason}; {hint}")]
    Refused { url: String, reason: String, hint: &'static str },
    #[error("stopped while waiting for PostgreSQL at {url}")]
    Interrupted { url: String },
    #[error("migrating {url} failed: {reason}")]
    Migrate { url: String, reason: String },
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// `1 attempt`, `3 attempts`.
pub fn plural(count: impl Into<u64>, noun: &str) -> String {
    match count.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `SET LOCAL lock_timeout` and `statement_timeout` from `[database]`, and
/// the vanished-client check (which PgBouncer keeps out of the startup
/// packet): they end with the transaction, so pooled connections go back clean.
pub async fn set_local_timeouts(conn: &mut sqlx::PgConnection, config: &DatabaseConfig) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
                set_config('client_connection_check_interval', $3, true)",
    )
    .bind(format!("{}ms", config.lock_timeout.0.as_millis()))
    .bind(format!("{}ms", config.statement_timeout.0.as_millis()))
    .bind(CLIENT_CHECK_INTERVAL)
    .execute(conn)
    .await?;
    Ok(())
}

/// A PostgreSQL error in one line: message, SQLSTATE, detail and hint.
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => {
                let mut text = format!("{} (SQLSTATE {})", pg.message(), pg.code());
                if let Some(detail) = pg.detail() {
                    text.push_str(&format!("; {detail}"));
                }
                if let Some(hint) = pg.hint() {
                    text.push_str(&format!("; hint: {hint}"));
                }
                text
            }
            None => db.message().to_string(),
        },
        // sqlx's own text already starts with "error with configuration:",
        // and so do the errors it wraps: say it once.
        sqlx::Error::Configuration(inner) => {
            let mut reason = inner.to_string();
            while let Some(rest) = reason.strip_prefix("error with configuration: ") {
                reason = rest.to_string();
            }
            format!("error with configuration: {reason}")
        }
        other => other.to_string(),
    }
}

/// Whether trying again later may succeed: lost connections, serialization
/// failures, deadlocks, lock timeouts and server shutdowns. SQL errors in a
/// definition, and statement timeouts, are permanent.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// `delay` scaled by a random factor in [0.5, 1.5), so replicas that failed
/// together do not retry together.
pub fn with_jitter(delay: Duration) -> Duration {
    delay.mul_f64(0.5 + rand::random::<f64>())
}
