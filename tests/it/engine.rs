//! The refresh engine's harder guarantees: one attempt tested directly,
//! lost connections retried, disabled aggregates left alone, and two real
//! worker processes sharing one database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tally::aggregates::{self, RefreshKind};
use tally::db::Transient;
use tally::refresh::RefreshOutcome;
use tally::refresh::attempt::{self, ActiveBackends, Attempt, REFRESH_LOCK_CLASS};

use crate::harness::{TestDb, config, http_get, insert_sample_events, refresher, start_worker, tally, wait_until};

#[tokio::test]
async fn one_attempt_builds_then_refreshes_and_yields_to_another_replica() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let aggregate = aggregates::find("daily_campaign_metrics").unwrap();
    let config = config("");
    let backends = ActiveBackends::default();
    let first = attempt::run(&db.pool, aggregate, &config, &backends).await.unwrap();
    assert_eq!(first, Attempt::Refreshed { kind: RefreshKind::Built, rows: 3, days: None });
    let second = attempt::run(&db.pool, aggregate, &config, &backends).await.unwrap();
    assert_eq!(second, Attempt::Refreshed { kind: RefreshKind::Refreshed, rows: 3, days: None });
    assert!(backends.pids().is_empty(), "a finished attempt leaves no backend behind");

    let other = db.another_pool().await;
    let mut replica = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext('daily_campaign_metrics'))")
        .bind(REFRESH_LOCK_CLASS)
        .execute(&mut *replica)
        .await
        .unwrap();
    let yielded = attempt::run(&db.pool, aggregate, &config, &backends).await.unwrap();
    assert!(
        matches!(&yielded, Attempt::LockedElsewhere { holder: Some(h) } if h.contains("backend pid")),
        "{yielded:?}"
    );
}

#[tokio::test]
async fn a_statement_timeout_is_a_permanent_failure_of_that_attempt() {
    let db = TestDb::migrated().await;
    let config = config("[database]\nstatement_timeout = \"300ms\"\nlock_timeout = \"30s\"\n");
    let _lock = db.lock_events().await;
    let error =
        attempt::run(&db.pool, aggregates::find("daily_event_counts").unwrap(), &config, &ActiveBackends::default())
            .await
            .unwrap_err();
    assert!(error.to_string().contains("statement timeout") && error.to_string().contains("57014"), "{error}");
    assert!(!error.is_transient(), "retrying a query that exceeds statement_timeout would only repeat it");
}

#[tokio::test]
async fn a_lost_connection_is_retried_and_the_refresh_succeeds() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let lock = db.lock_events().await;
    let refresher = Arc::new(refresher(&db.pool, config("[database]\nlock_timeout = \"30s\"\n")));
    let task = tokio::spawn({
        let refresher = refresher.clone();
        async move { refresher.refresh(aggregates::find("daily_campaign_metrics").unwrap()).await.unwrap() }
    });
    let backend = || async {
        db.lock_waits().await.into_iter().find(|w| w.query.contains("daily_campaign_metrics")).map(|w| w.pid)
    };
    assert!(wait_until(Duration::from_secs(10), || async { backend().await.is_some() }).await);
    let pid = backend().await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&db.pool).await.unwrap();
    lock.rollback().await.unwrap();
    let report = task.await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Success, "{:?}", report.error);
    assert_eq!(report.attempts, 2, "the attempt whose connection died was retried");
    assert_eq!(report.rows, Some(3));
}

#[tokio::test]
async fn a_disabled_aggregate_is_never_refreshed() {
    let db = TestDb::migrated().await;
    let toml = "[aggregates.daily_attribution]\nenabled = false\n";
    let all = tally(&["refresh"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(all.code, Some(1), "the view over it cannot be built: {all:?}");
    assert!(!all.stdout.contains("daily_attribution:"), "{}", all.stdout);
    assert!(all.stdout.contains("campaign_performance: failed"), "{}", all.stdout);
    assert!(
        all.stdout.contains(
            "reads daily_campaign_metrics, daily_attribution, daily_campaign_spend, which must be built first"
        ),
        "{}",
        all.stdout
    );

    let named = tally(&["refresh", "daily_attribution"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(named.code, Some(2));
    assert!(named.stderr.contains("`daily_attribution` is disabled"), "{}", named.stderr);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('reporting.daily_attribution') IS NOT NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(!exists);

    let status = tally(&["status"]).database(&db.url).config_file(toml).output().await;
    assert!(status.stdout.contains("daily_attribution (concurrently, every 5m; disabled)"), "{}", status.stdout);
    assert!(status.stdout.contains("next run:     never"), "{}", status.stdout);
}

#[tokio::test]
async fn two_workers_on_one_database_never_refresh_one_aggregate_at_once() {
    let db = TestDb::migrated().await;
    tally::demo::generate(
        &db.pool,
        &config(""),
        &tally::demo::GenerateOptions { events: 60_000, ..Default::default() },
    )
    .await
    .unwrap();
    // Both fire at every second boundary, so they contend every time.
    let toml = r#"
[aggregates.daily_campaign_metrics]
schedule = "* * * * * *"
[aggregates.daily_event_counts]
schedule = "* * * * * *"
[aggregates.daily_attribution]
schedule = "* * * * * *"
[aggregates.daily_lead_funnel]
every = "1h"
"#;
    let (mut a, a_addr) = start_worker(&db.url, toml);
    let (mut b, b_addr) = start_worker(&db.url, toml);

    // Sample pg_stat_activity: never two refreshes of one aggregate at once.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let sampler = tokio::spawn({
        let (pool, stop, most) = (db.another_pool().await, stop.clone(), most.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let concurrent: i64 = sqlx::query_scalar(
                    "SELECT coalesce(max(n), 0) FROM (
                         SELECT count(*) AS n FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = 'tally'
                           AND backend_type = 'client backend'
                           AND state = 'active' AND query LIKE 'REFRESH MATERIALIZED VIEW%'
                         GROUP BY query) AS per_aggregate",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                most.fetch_max(concurrent, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    // Run until the contention was seen, not for a fixed time: ten refreshes
    // yielded to the other worker, both workers refreshed, the sampler saw a
    // REFRESH running.
    let outcomes = || async {
        sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT outcome, count(*), count(DISTINCT worker) FROM tally.refresh_runs GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap()
    };
    // (runs, workers) with `outcome`.
    let get = |rows: &[(String, i64, i64)], outcome: &str| {
        rows.iter().find(|o| o.0 == outcome).map(|o| (o.1, o.2)).unwrap_or((0, 0))
    };
    let contended = wait_until(Duration::from_secs(120), || async {
        let rows = outcomes().await;
        get(&rows, "locked_elsewhere").0 >= 10 && get(&rows, "success").1 == 2 && most.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert!(contended, "no contention seen within 2 minutes: {:?}\n{}\n{}", outcomes().await, a.log(), b.log());
    for addr in [a_addr, b_addr] {
        assert_eq!(http_get(addr, "/healthz").await.map(|(s, _)| s), Some(200));
        assert_eq!(http_get(addr, "/readyz").await.map(|(s, _)| s), Some(200));
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    for worker in [&a, &b] {
        worker.signal(Signal::SIGTERM);
    }
    assert_eq!(a.wait(Duration::from_secs(30)).await, Some(0), "{}", a.log());
    assert_eq!(b.wait(Duration::from_secs(30)).await, Some(0), "{}", b.log());

    assert_eq!(most.load(Ordering::Relaxed), 1, "at most one REFRESH of an aggregate ran at any moment");
    let outcomes = outcomes().await;
    assert!(get(&outcomes, "locked_elsewhere").0 > 0, "they did contend: {outcomes:?}");
    assert_eq!(get(&outcomes, "success").1, 2, "both workers refreshed: {outcomes:?}");
    assert_eq!(get(&outcomes, "failure").0, 0, "{outcomes:?}");
}
