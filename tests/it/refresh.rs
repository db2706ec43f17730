//! The refresh engine's guarantees: no overlap in a process or across
//! replicas, retries of transient failures, the concurrency cap, history.

use std::sync::Arc;
use std::time::Duration;

use tally::aggregates;
use tally::metrics::Metrics;
use tally::refresh::{RefreshOutcome, Refresher, history};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestDb, config, metric, refresher, wait_until};

#[tokio::test]
async fn a_refresh_still_running_in_this_process_is_skipped_and_counted() {
    let db = TestDb::migrated().await;
    let names = [("daily_event_counts", "concurrently")];
    let metrics = Arc::new(Metrics::new(&names));
    let config = config("[database]\nlock_timeout = \"30s\"\n");
    let refresher = Arc::new(Refresher::new(db.pool.clone(), config, metrics.clone(), CancellationToken::new()));
    let aggregate = aggregates::find("daily_event_counts").unwrap();
    let lock = db.lock_events().await;

    let first = tokio::spawn({
        let refresher = refresher.clone();
        async move { refresher.refresh(aggregate).await.unwrap() }
    });
    assert!(wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await == 1 }).await);
    assert!(refresher.is_running("daily_event_counts"));
    let second = refresher.refresh(aggregate).await.unwrap();
    assert_eq!(second.outcome, RefreshOutcome::SkippedRunning);

    lock.rollback().await.unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.outcome, RefreshOutcome::Success, "{:?}", first.error);
    let text = metrics.render(chrono::Utc::now());
    let series =
        |outcome: &str| format!("tally_refreshes_total{{aggregate=\"daily_event_counts\",outcome=\"{outcome}\"}}");
    assert_eq!(metric(&text, &series("skipped_running")), Some(1.0));
    assert_eq!(metric(&text, &series("success")), Some(1.0));
    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM tally.refresh_runs ORDER BY id").fetch_all(&db.pool).await.unwrap();
    assert_eq!(outcomes, ["skipped_running", "success"]);
}

#[tokio::test]
async fn a_refresh_locked_by_another_replica_is_skipped_without_error() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;
    let mut replica = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext('daily_event_counts'))")
        .bind(tally::refresh::attempt::REFRESH_LOCK_CLASS)
        .execute(&mut *replica)
        .await
        .unwrap();
    let refresher = refresher(&db.pool, config(""));
    let report = refresher.refresh(aggregates::find("daily_event_counts").unwrap()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::LockedElsewhere);
    assert_eq!(report.error, None);
    replica.rollback().await.unwrap();
    let report = refresher.refresh(aggregates::find("daily_event_counts").unwrap()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Success);
}

#[tokio::test]
async fn a_lock_timeout_is_retried_then_reported_with_the_aggregate_name() {
    let db = TestDb::migrated().await;
    let names = [("daily_campaign_metrics", "concurrently")];
    let metrics = Arc::new(Metrics::new(&names));
    let config = config("[database]\nlock_timeout = \"200ms\"\n[refresh]\nmax_attempts = 2\n");
    let refresher = Refresher::new(db.pool.clone(), config, metrics.clone(), CancellationToken::new());
    let _lock = db.lock_events().await;
    let report = refresher.refresh(aggregates::find("daily_campaign_metrics").unwrap()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Failure);
    assert_eq!(report.attempts, 2, "a lock timeout is transient: retried up to max_attempts");
    let error = report.error.unwrap();
    assert!(error.contains("lock timeout") && error.contains("55P03"), "{error}");
    let text = metrics.render(chrono::Utc::now());
    assert_eq!(metric(&text, "tally_refresh_failures_total{aggregate=\"daily_campaign_metrics\"}"), Some(1.0));
    let staleness = metric(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_campaign_metrics\"}").unwrap();
    assert!(staleness.is_infinite(), "never refreshed successfully: {staleness}");
}

#[tokio::test]
async fn max_concurrent_caps_refreshes_in_flight() {
    let db = TestDb::migrated().await;
    let config = config("[database]\nlock_timeout = \"30s\"\n[refresh]\nmax_concurrent = 1\n");
    let refresher = Arc::new(refresher(&db.pool, config));
    let lock = db.lock_events().await;
    let tasks: Vec<_> = ["daily_campaign_metrics", "daily_event_counts"]
        .into_iter()
        .map(|name| {
            let refresher = refresher.clone();
            tokio::spawn(async move { refresher.refresh(aggregates::find(name).unwrap()).await.unwrap() })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(db.sessions_waiting_for_locks().await, 1, "the second refresh waits for a permit, not on the database");
    lock.rollback().await.unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap().outcome, RefreshOutcome::Success);
    }
}

#[tokio::test]
async fn freshness_is_restored_from_history_after_a_restart() {
    let db = TestDb::migrated().await;
    let first = refresher(&db.pool, config("")).refresh(aggregates::find("daily_event_counts").unwrap()).await.unwrap();
    assert_eq!(first.outcome, RefreshOutcome::Success);

    // A new process: fresh metrics, then history read back.
    let names = [("daily_event_counts", "concurrently")];
    let metrics = Arc::new(Metrics::new(&names));
    let restarted = Refresher::new(db.pool.clone(), config(""), metrics.clone(), CancellationToken::new());
    restarted.restore_freshness().await.unwrap();
    let text = metrics.render(first.started_at + chrono::Duration::seconds(42));
    let staleness = metric(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}").unwrap();
    assert!((staleness - 42.0).abs() < 0.01, "{staleness}");
    let last = metric(&text, "tally_refresh_last_success_timestamp_seconds{aggregate=\"daily_event_counts\"}").unwrap();
    assert!((last - first.finished_at.timestamp_millis() as f64 / 1000.0).abs() < 0.01);
}

#[tokio::test]
async fn history_is_pruned_but_each_last_success_is_kept() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "INSERT INTO tally.refresh_runs (aggregate, mode, started_at, finished_at, outcome) VALUES
         ('daily_event_counts', 'concurrently', now() - interval '40 days', now() - interval '40 days', 'success'),
         ('daily_event_counts', 'concurrently', now() - interval '39 days', now() - interval '39 days', 'failure'),
         ('daily_campaign_metrics', 'concurrently', now() - interval '45 days', now() - interval '45 days', 'success'),
         ('daily_campaign_metrics', 'concurrently', now() - interval '1 day', now() - interval '1 day', 'success')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(history::prune(&db.pool, 30).await.unwrap(), 2);
    let left: Vec<(String, i32)> = sqlx::query_as(
        "SELECT aggregate, extract(day FROM now() - started_at)::int FROM tally.refresh_runs ORDER BY aggregate",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, [("daily_campaign_metrics".into(), 1), ("daily_event_counts".into(), 40)]);
}
