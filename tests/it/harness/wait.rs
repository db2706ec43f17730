//! Waiting without guessing durations: polling a condition until it holds
//! (or a generous timeout passes), and locks held and waited for, seen from
//! the server (`pg_stat_activity`), so that a test can wait until a session
//! is stuck on a lock.

use std::time::Duration;

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
    pub async fn sessions_waiting_for_locks(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&self.pool)
        .await
        .expect("pg_stat_activity")
    }
}
