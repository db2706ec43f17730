//! Waiting, and observing waits instead of timing them: polling a
//! condition until it holds (or a generous timeout passes); locks held and
//! waited for as the server sees them (`pg_stat_activity`,
//! `pg_blocking_pids`); and sessions whose `lock_timeout` bounds how long a
//! statement may wait for a lock, whatever the machine's load. A test that
//! says "no writer waited" asserts it this way, never by a stopwatch: under a
//! parallel suite a statement can be slow without waiting for anything.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::TestDb;

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestDb {
    /// Holds ACCESS EXCLUSIVE on `marketing.events` (until the transaction
    /// ends), so any refresh or partition change waits for it.
    pub async fn lock_events(&self) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.another_pool().await.begin().await.expect("begin");
        sqlx::query("LOCK TABLE marketing.events IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.expect("lock");
        tx
    }

    /// Sessions of this database waiting for a lock.
    pub async fn sessions_waiting_for_locks(&self) -> usize {
        self.lock_waits().await.len()
    }
}

/// A session of its own, for a test to drive statement by statement.
pub struct Session {
    pub conn: PgConnection,
    /// Its backend's pid, as `pg_stat_activity` and `pg_locks` show it.
    pub pid: i32,
}

/// A backend of the test database waiting for a lock, as the server sees it.
#[derive(Debug, Clone)]
pub struct LockWait {
    pub pid: i32,
    /// `pg_stat_activity.wait_event`: `relation`, `virtualxid`, `advisory`, ...
    pub wait_event: String,
    pub query: String,
    /// The backends it waits for (`pg_blocking_pids`).
    pub blocked_by: Vec<i32>,
}

impl TestDb {
    /// A session of its own whose statements wait for a lock at most
    /// `lock_timeout`, then fail with SQLSTATE 55P03 (lock_not_available).
    /// A statement that succeeds on it waited less than that for locks,
    /// however slow the machine: time on CPU or disk does not count.
    pub async fn session_with_lock_timeout(&self, lock_timeout: &str) -> Session {
        let options =
            PgConnectOptions::from_str(self.url.expose()).expect("test URL").options([("lock_timeout", lock_timeout)]);
        let mut conn = PgConnection::connect_with(&options).await.expect("connect");
        let pid = backend_pid(&mut conn).await;
        Session { conn, pid }
    }

    /// The backends of this database waiting for a lock right now, with
    /// the backends they wait for.
    pub async fn lock_waits(&self) -> Vec<LockWait> {
        let rows: Vec<(i32, String, String, Vec<i32>)> = sqlx::query_as(
            "SELECT pid, wait_event, query, pg_blocking_pids(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_all(&self.pool)
        .await
        .expect("pg_stat_activity");
        rows.into_iter()
            .map(|(pid, wait_event, query, blocked_by)| LockWait { pid, wait_event, query, blocked_by })
            .collect()
    }
}

/// The pid of the backend `conn` talks to.
pub async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await.expect("pid")
}

/// Whether `error` is a statement giving up on a lock (`lock_timeout`, 55P03).
pub fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).as_deref() == Some("55P03")
}
