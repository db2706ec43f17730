//! One refresh attempt, as a plain function: take the aggregate's advisory
//! lock (or report that another replica holds it), set the session timeouts,
//! bring the aggregate up to date, commit. Retries, history and metrics are
//! the caller's business.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::{Acquire, PgPool};

use crate::aggregates::{Aggregate, Kind, views};
use crate::aggregates::{ModeError, RefreshKind, concurrently, incremental, triggers};
use crate::config::Config;
use crate::config::Mode;

/// First key of every refresh advisory lock (`"tref"`); the second is
/// `hashtext(aggregate name)`. Transaction-scoped, so it works through
/// PgBouncer in transaction mode and is released by any rollback.
pub const REFRESH_LOCK_CLASS: i32 = 0x7472_6566;

/// What one attempt achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// `days`: days rewritten by an incremental refresh.
    Refreshed { kind: RefreshKind, rows: i64, days: Option<i64> },
    /// Another session (another tally replica) holds this aggregate's lock.
    LockedElsewhere,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("{}", crate::db::describe(.0))]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Mode(String),
}

impl From<ModeError> for AttemptError {
    fn from(error: ModeError) -> Self {
        match error {
            ModeError::Database(e) => AttemptError::Database(e),
            other => AttemptError::Mode(other.to_string()),
        }
    }
}

impl crate::db::Transient for AttemptError {
    /// Whether a later attempt may succeed (see [`crate::db::is_transient`]).
    fn is_transient(&self) -> bool {
        matches!(self, AttemptError::Database(e) if crate::db::is_transient(e))
    }
}

/// Backend pids of the refreshes running in this process, so shutdown can
/// cancel them with `pg_cancel_backend` once the grace period is over.
#[derive(Default)]
pub struct ActiveBackends(Mutex<HashMap<&'static str, i32>>);

impl ActiveBackends {
    fn register(&self, aggregate: &'static str, pid: i32) -> ActiveBackend<'_> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(aggregate, pid);
        ActiveBackend { backends: self, aggregate }
    }

    /// The pids of refreshes running right now.
    pub fn pids(&self) -> Vec<(&'static str, i32)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(a, p)| (*a, *p)).collect()
    }
}

/// Removes its aggregate from [`ActiveBackends`] when the attempt ends.
struct ActiveBackend<'a> {
    backends: &'a ActiveBackends,
    aggregate: &'static str,
}

impl Drop for ActiveBackend<'_> {
    fn drop(&mut self) {
        self.backends.0.lock().unwrap_or_else(|p| p.into_inner()).remove(self.aggregate);
    }
}

/// Runs one attempt on a connection from `pool`.
pub async fn run(
    pool: &PgPool,
    aggregate: &'static Aggregate,
    config: &Config,
    backends: &ActiveBackends,
) -> Result<Attempt, AttemptError> {
    let mode = config.aggregate(aggregate.name).map(|s| s.mode);
    if mode == Some(Mode::Incremental) {
        // Committed before the refresh begins, so no write escapes both the
        // build's snapshot and the triggers.
        triggers::ensure(pool, config).await?;
    }
    let mut conn = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await?;
    let _active = backends.register(aggregate.name, pid);

    let mut tx = conn.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
        .bind(REFRESH_LOCK_CLASS)
        .bind(aggregate.name)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.rollback().await?;
        return Ok(Attempt::LockedElsewhere);
    }
    crate::db::set_local_timeouts(&mut tx, &config.database).await?;
    let attempt = match (aggregate.kind, mode) {
        (Kind::View, _) => {
            let (kind, rows) = views::refresh(&mut tx, aggregate, config).await?;
            Attempt::Refreshed { kind, rows, days: None }
        }
        (Kind::Rollup, Some(Mode::Incremental)) => {
            let outcome = incremental::refresh(&mut tx, aggregate, config).await?;
            Attempt::Refreshed { kind: outcome.kind, rows: outcome.rows, days: outcome.days }
        }
        (Kind::Rollup, _) => {
            let (kind, rows) = concurrently::refresh(&mut tx, aggregate, config).await?;
            Attempt::Refreshed { kind, rows, days: None }
        }
    };
    tx.commit().await?;
    Ok(attempt)
}
