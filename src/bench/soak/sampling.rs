//! Samples of the worker during the soak: its resident memory, its
//! connections and the refresh history; and stopping it.

use std::time::Duration;

use sqlx::PgPool;
use tokio::process::Child;

#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub(super) elapsed: Duration,
    pub(super) rss_kb: u64,
    pub(super) connections: i64,
    pub(super) successes: i64,
    pub(super) failures: i64,
    pub(super) events: i64,
    pub(super) history_rows: i64,
}

pub(super) async fn sample(
    pool: &PgPool,
    pid: u32,
    elapsed: Duration,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Sample, sqlx::Error> {
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tally' AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await?;
    let (successes, failures): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'success'), count(*) FILTER (WHERE outcome = 'failure')
         FROM tally.refresh_runs WHERE started_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(pool).await?;
    let history_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tally.refresh_runs").fetch_one(pool).await?;
    Ok(Sample { elapsed, rss_kb, connections, successes, failures, events, history_rows })
}

/// SIGTERM, then the exit code (killed after a minute).
pub(super) async fn stop(worker: &mut Child) -> Option<i32> {
    if let Some(pid) = worker.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    match tokio::time::timeout(Duration::from_secs(60), worker.wait()).await {
        Ok(Ok(status)) => status.code(),
        _ => {
            let _ = worker.kill().await;
            None
        }
    }
}
