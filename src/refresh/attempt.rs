//! One refresh attempt, as a plain function: take the aggregate's advisory
//! lock (or report that another replica holds it), set the session timeouts,
//! bring the aggregate up to date, commit. Retries, history and metrics are
//! the caller's business.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// `days`: days rewritten by an incremental refresh.
    Refreshed { kind: RefreshKind, rows: i64, days: Option<i64> },
    /// Another session (another tally replica) holds this aggregate's lock;
    /// `holder` says which, when it could be read.
    LockedElsewhere { holder: Option<String> },
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

/// Runs one attempt on a connection from `pool`; if another session holds
/// the aggregate's lock, yields at once (what the worker does).
pub async fn run(
    pool: &PgPool,
    aggregate: &'static Aggregate,
    config: &Config,
    backends: &ActiveBackends,
) -> Result<Attempt, AttemptError> {
    run_waiting(pool, aggregate, config, backends, Duration::ZERO).await
}

/// [`run`], but waiting up to `lock_wait` for another session's refresh of
/// the aggregate to end before yielding (what `tally refresh` does: it
/// must not report success for an aggregate it did not refresh).
async fn run_waiting(
    pool: &PgPool,
    aggregate: &'static Aggregate,
    config: &Config,
    backends: &ActiveBackends,
    lock_wait: Duration,
) -> Result<Attempt, AttemptError> {
    let mode = config.aggregate(aggregate.name).map(|s| s.mode);
    if mode == Some(Mode::Incremental) {
        // Committed before the refresh begins, so no write escapes both the
        // build's snapshot and the triggers.
        triggers::ensure_reading(pool, config, aggregate).await.map_err(|e| match e {
            triggers::TriggerError::Database(e) => AttemptError::Database(e),
            other => AttemptError::Mode(other.to_string()),
        })?;
        incremental::distribute(pool).await?;
    }
    let mut conn = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *conn).await?;
    let _active = backends.register(aggregate.name, pid);

    let mut tx = conn.begin().await?;
    if !lock(&mut tx, aggregate.name, lock_wait).await? {
        tx.rollback().await?;
        let holder = lock_holder(&mut conn, aggregate.name).await.unwrap_or_else(|e| {
            tracing::debug!(error = %crate::db::describe(&e), "could not read who holds the refresh lock");
            None
        });
        return Ok(Attempt::LockedElsewhere { holder });
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

/// [`run_waiting`], bounded on the client side too. `statement_timeout`
/// bounds each statement on the server, but a server whose host vanished
/// (a failover, a partition) answers nothing, and nothing in the driver
/// notices: after three times `statement_timeout` plus the lock wait, the
/// attempt gives up on its connection (dropping it) with a lost connection
/// error, which is retried. No bound when `statement_timeout` is 0.
pub async fn run_bounded(
    pool: &PgPool,
    aggregate: &'static Aggregate,
    config: &Config,
    backends: &ActiveBackends,
    lock_wait: Duration,
) -> Result<Attempt, AttemptError> {
    let attempt = run_waiting(pool, aggregate, config, backends, lock_wait);
    let statement_timeout = config.database.statement_timeout.0;
    if statement_timeout.is_zero() {
        return attempt.await;
    }
    let limit = statement_timeout.saturating_mul(3).saturating_add(lock_wait);
    tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
        Err(AttemptError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "PostgreSQL did not answer within {} (three times statement_timeout, plus the lock wait); \
                 the connection is presumed lost",
                humantime::format_duration(limit)
            ),
        ))))
    })
}

/// Takes the aggregate's transaction-scoped advisory lock: at once or not at
/// all when `wait` is zero, else waiting for it under `lock_timeout = wait`
/// (which `set_local_timeouts` replaces right after). `false`: held elsewhere.
async fn lock(tx: &mut sqlx::PgConnection, aggregate: &str, wait: Duration) -> Result<bool, sqlx::Error> {
    if wait.is_zero() {
        return sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
            .bind(REFRESH_LOCK_CLASS)
            .bind(aggregate)
            .fetch_one(&mut *tx)
            .await;
    }
    // The vanished-client check first, in a statement of its own (the server
    // arms it when a statement starts), for PgBouncer keeps it out of the
    // startup packet: a process killed while it waits must not leave the
    // wait behind. Then the timeout and the wait in one statement.
    sqlx::query("SELECT set_config('client_connection_check_interval', $1, true)")
        .bind(crate::db::CLIENT_CHECK_INTERVAL)
        .execute(&mut *tx)
        .await?;
    let waited = sqlx::query("SELECT set_config('lock_timeout', $3, true), pg_advisory_xact_lock($1, hashtext($2))")
        .bind(REFRESH_LOCK_CLASS)
        .bind(aggregate)
        .bind(format!("{}ms", wait.as_millis().max(1)))
        .execute(&mut *tx)
        .await;
    match waited {
        Ok(_) => Ok(true),
        Err(e) if crate::db::sqlstate(&e).as_deref() == Some("55P03") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Who holds the aggregate's refresh lock: its backend pid, client and
/// how long its transaction has run; `None` when nobody does any more.
async fn lock_holder(conn: &mut sqlx::PgConnection, aggregate: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE WHEN a.xact_start IS NULL
                     -- Another role's session, seen without pg_read_all_stats: only its pid and role show.
                     THEN format('backend pid %s of role %s (its client is hidden from this role)', a.pid, a.usename)
                     ELSE format('backend pid %s: %s from %s, transaction open for %s s', a.pid,
                                 coalesce(nullif(a.application_name, ''), 'unnamed client'),
                                 coalesce(host(a.client_addr), 'a local socket'),
                                 round(extract(epoch FROM now() - a.xact_start)))
                END
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid::bigint = $1 AND l.objid::bigint = (hashtext($2)::bigint & 4294967295) AND l.objsubid = 2
         LIMIT 1",
    )
    .bind(i64::from(REFRESH_LOCK_CLASS))
    .bind(aggregate)
    .fetch_optional(conn)
    .await
}
