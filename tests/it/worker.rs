//! `tally run` as a real process: endpoints, scheduled refreshes, restart,
//! a database that is down at start, and graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use tally::db::EphemeralCluster;

use crate::harness::{
    FAST, Running, TestDb, http_get, insert_sample_events, metric, metrics, start_worker, tally, wait_for_metric,
    wait_until,
};

fn successes(aggregate: &str) -> String {
    format!("tally_refreshes_total{{aggregate=\"{aggregate}\",outcome=\"success\"}}")
}

/// Starts a worker on `db` (migrated) with the given grace period, waits for
/// its first refreshes, adds events and blocks `marketing.events`, then waits
/// until a refresh is stuck on that lock. Returns the worker, its address and
/// the lock (released by ending the transaction).
async fn worker_with_a_blocked_refresh(
    db: &TestDb,
    grace: &str,
) -> (Running, SocketAddr, sqlx::Transaction<'static, sqlx::Postgres>) {
    let toml = format!("[database]\nlock_timeout = \"60s\"\n[refresh]\nshutdown_grace = \"{grace}\"\n{FAST}");
    let (worker, addr) = start_worker(&db.url, &toml);
    wait_for_metric(addr, &successes("daily_campaign_metrics"), 1.0).await;
    wait_for_metric(addr, &successes("daily_event_counts"), 1.0).await;
    insert_sample_events(&db.pool).await;
    let lock = db.lock_events().await;
    assert!(wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    (worker, addr, lock)
}

#[tokio::test]
async fn the_worker_migrates_partitions_refreshes_on_schedule_and_serves_metrics() {
    let db = TestDb::empty().await;
    let (mut worker, addr) = start_worker(&db.url, FAST);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            http_get(addr, "/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await
    );
    wait_for_metric(addr, &successes("daily_campaign_metrics"), 2.0).await;
    wait_for_metric(addr, &successes("daily_event_counts"), 2.0).await;

    let text = metrics(addr).await;
    assert_eq!(metric(&text, "tally_partitions{table=\"marketing.events\"}"), Some(4.0));
    assert_eq!(metric(&text, "tally_partition_future_months{table=\"marketing.events\"}"), Some(3.0));
    assert_eq!(metric(&text, &format!("tally_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))), Some(1.0));
    let staleness = metric(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}").unwrap();
    assert!((0.0..10.0).contains(&staleness), "{staleness}");
    assert!(text.contains(
        "tally_refresh_duration_seconds_bucket{aggregate=\"daily_event_counts\",mode=\"concurrently\",le=\"1800\"}"
    ));
    assert!(
        metric(&text, "tally_refresh_last_success_timestamp_seconds{aggregate=\"daily_event_counts\"}").unwrap()
            > 1.7e9
    );
    assert_eq!(metric(&text, "tally_aggregate_rows{aggregate=\"daily_event_counts\"}"), Some(0.0));
    assert_eq!(http_get(addr, "/healthz").await.map(|(s, _)| s), Some(200));
    let check = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", &addr.to_string()).output().await;
    assert_eq!(check.code, Some(0), "{check:?}");

    // Rows written meanwhile reach the aggregates at the next run.
    insert_sample_events(&db.pool).await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            metric(&metrics(addr).await, "tally_aggregate_rows{aggregate=\"daily_campaign_metrics\"}") == Some(3.0)
        })
        .await
    );

    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    assert!(worker.log().contains("stopped"));

    // After a restart freshness comes back from tally.refresh_runs, before any refresh runs.
    let last_finish: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM max(finished_at))::float8 FROM tally.refresh_runs
         WHERE aggregate = 'daily_event_counts' AND outcome = 'success'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let yearly = "[aggregates.daily_campaign_metrics]\nschedule = \"0 0 0 1 1 *\"\n[aggregates.daily_event_counts]\nschedule = \"0 0 0 1 1 *\"\n";
    let (mut restarted, addr) = start_worker(&db.url, yearly);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            http_get(addr, "/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await
    );
    restarted.wait_for_log("worker running", Duration::from_secs(10)).await;
    let text = metrics(addr).await;
    let restored =
        metric(&text, "tally_refresh_last_success_timestamp_seconds{aggregate=\"daily_event_counts\"}").unwrap();
    assert!((restored - last_finish).abs() < 0.01, "{restored} vs {last_finish}");
    assert!(metric(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}").unwrap().is_finite());
    assert_eq!(metric(&text, &successes("daily_event_counts")), Some(0.0), "nothing was due, so nothing ran");
    restarted.signal(Signal::SIGINT);
    assert_eq!(restarted.wait(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test]
async fn a_database_down_at_start_is_waited_for_with_backoff() {
    let mut cluster = tokio::task::spawn_blocking(EphemeralCluster::start).await.unwrap().unwrap();
    let url = cluster.url();
    cluster.pause().unwrap();
    let (mut worker, addr) = start_worker(&url, FAST);
    worker.wait_for_log("PostgreSQL unreachable; retrying", Duration::from_secs(20)).await;
    assert_eq!(http_get(addr, "/healthz").await.map(|(s, _)| s), Some(200), "waiting for the database is healthy");
    let (status, body) = http_get(addr, "/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("not connected"), "{body}");

    cluster.resume().unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || async {
            http_get(addr, "/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await
    );
    wait_for_metric(addr, &successes("daily_event_counts"), 1.0).await;
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0));
    assert!(!worker.log().contains("panicked"));
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn sigterm_waits_for_a_running_refresh_within_the_grace_period() {
    let db = TestDb::migrated().await;
    let (mut worker, addr, lock) = worker_with_a_blocked_refresh(&db, "20s").await;
    // While it waits, the scheduler's next runs are skipped and counted.
    wait_for_metric(
        addr,
        "tally_refreshes_total{aggregate=\"daily_campaign_metrics\",outcome=\"skipped_running\"}",
        1.0,
    )
    .await;

    let waiting: String = sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tally' AND wait_event_type = 'Lock'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    // max_concurrent = 1: one refresh waits on the lock, the other for a permit.
    let (running, expected_rows) =
        if waiting.contains("daily_event_counts") { ("daily_event_counts", 4) } else { ("daily_campaign_metrics", 3) };

    worker.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(worker.child.try_wait().unwrap().is_none(), "still waiting for the refresh");
    lock.rollback().await.unwrap();
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM reporting.{running}")))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, expected_rows, "the refresh of {running} that was running finished before exit");
}

#[tokio::test]
async fn after_the_grace_period_a_refresh_is_cancelled_and_the_aggregate_keeps_its_contents() {
    let db = TestDb::migrated().await;
    let (mut worker, _addr, lock) = worker_with_a_blocked_refresh(&db, "1s").await;

    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(20)).await, Some(0), "{}", worker.log());
    assert!(worker.log().contains("cancelling the refresh"), "{}", worker.log());
    lock.rollback().await.unwrap();
    let error: String =
        sqlx::query_scalar("SELECT error FROM tally.refresh_runs WHERE outcome = 'failure' ORDER BY id DESC LIMIT 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(error.contains("canceling statement due to user request"), "{error}");
    for aggregate in ["daily_campaign_metrics", "daily_event_counts"] {
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM reporting.{aggregate}")))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0, "{aggregate} keeps its last good contents");
    }

    // A later start refreshes normally.
    let out = tally(&["refresh"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 3);
}

#[tokio::test]
async fn retention_with_concurrently_aggregates_is_warned_about_at_start() {
    let db = TestDb::migrated().await;
    let (mut worker, _addr) = start_worker(&db.url, "[partitions]\nretention_months = 6\n");
    worker.wait_for_log("worker running", Duration::from_secs(30)).await;
    let log = worker.log();
    let warned: Vec<&str> = log.lines().filter(|l| l.contains("retention is on and this aggregate")).collect();
    assert_eq!(warned.len(), 3, "the three rollups that read marketing.events: {log}");
    assert!(warned.iter().any(|l| l.contains("daily_attribution")));
    assert!(!warned.iter().any(|l| l.contains("daily_lead_funnel")), "it reads leads only");
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test]
async fn the_incremental_backlog_is_exported_and_drains_at_the_next_refresh() {
    let db = TestDb::migrated().await;
    // Built at start-up, then no scheduled refresh for a year.
    let toml = "[aggregates.daily_event_counts]\nmode = \"incremental\"\nschedule = \"0 0 0 1 1 *\"\n";
    let (mut worker, addr) = start_worker(&db.url, toml);
    wait_for_metric(addr, &successes("daily_event_counts"), 1.0).await;
    sqlx::query(
        "INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', now()), ('page_view', now() - interval '3 days')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let series = "tally_invalidated_days{aggregate=\"daily_event_counts\"}";
    wait_for_metric(addr, series, 2.0).await;

    let refreshed = tally(&["refresh", "daily_event_counts"]).database(&db.url).config_file(toml).output().await;
    assert!(refreshed.stdout.contains("daily_event_counts: refreshed (incremental, 2 days"), "{refreshed:?}");
    let drained =
        wait_until(Duration::from_secs(20), || async { metric(&metrics(addr).await, series) == Some(0.0) }).await;
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0));
    assert!(drained, "the backlog went back to 0 after the refresh");
}
