//! Faults production brings, on real processes and real PostgreSQL: the
//! server restarted under a running worker, processes killed with SIGKILL in
//! the middle of a refresh, an ingest and a partition move, a refresh that
//! runs out of temporary file space, and one of two replicas killed. Each test
//! checks that nothing was lost and the aggregates are right afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use sqlx::PgPool;
use tally::aggregates;
use tally::db::EphemeralCluster;
use tally::refresh::RefreshOutcome;

use crate::harness::{
    FAST, TestDb, Workload, assert_matches_scratch, assert_rollups_match_scratch, config, create_months, generated,
    http_get, insert_sample_events, metric_of, ready, refresh_all, start_worker, tally, wait_for_metric_within,
    wait_until,
};

/// The two aggregates FAST refreshes equal a computation from scratch.
async fn fast_aggregates_match_scratch(pool: &PgPool) {
    let names = ["daily_campaign_metrics", "daily_event_counts"];
    assert_rollups_match_scratch(pool, &config(""), &names, "after the fault").await;
}

const CAMPAIGN_ROWS: &str = "tally_aggregate_rows{aggregate=\"daily_campaign_metrics\"}";
const EVENT_ROWS: &str = "tally_aggregate_rows{aggregate=\"daily_event_counts\"}";

/// Both FAST aggregates hold the sample events (3 campaign rows, 4 event rows).
async fn sample_events_refreshed(addr: SocketAddr) -> bool {
    wait_until(Duration::from_secs(60), || async {
        metric_of(addr, CAMPAIGN_ROWS).await == Some(3.0) && metric_of(addr, EVENT_ROWS).await == Some(4.0)
    })
    .await
}
const CAMPAIGN_OK: &str = "tally_refreshes_total{aggregate=\"daily_campaign_metrics\",outcome=\"success\"}";

#[tokio::test]
async fn postgresql_restarted_under_a_running_worker_is_reconnected_and_refreshes_resume() {
    let mut cluster = tokio::task::spawn_blocking(EphemeralCluster::start).await.unwrap().unwrap();
    let url = cluster.url();
    let (mut worker, addr) = start_worker(&url, FAST);
    wait_for_metric_within(addr, CAMPAIGN_OK, 1.0, Duration::from_secs(60)).await;
    assert_eq!(ready(addr).await, Some(200));

    // The server goes away (a restart, a failover): not ready, still healthy, no exit.
    cluster.pause().unwrap();
    assert!(wait_until(Duration::from_secs(30), || async { ready(addr).await == Some(503) }).await, "readyz turns 503");
    assert_eq!(http_get(addr, "/healthz").await.map(|(s, _)| s), Some(200));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(worker.child.try_wait().unwrap().is_none(), "the worker waits for the database:\n{}", worker.log());

    cluster.resume().unwrap();
    assert!(wait_until(Duration::from_secs(60), || async { ready(addr).await == Some(200) }).await, "ready again");
    // Refreshes resume: rows written after the restart reach the aggregate.
    let pool = PgPool::connect(url.expose()).await.unwrap();
    insert_sample_events(&pool).await;
    assert!(sample_events_refreshed(addr).await, "{}", worker.log());
    fast_aggregates_match_scratch(&pool).await;
    pool.close().await;
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    assert!(!worker.log().contains("panicked"));
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_worker_killed_in_the_middle_of_a_refresh_leaves_the_aggregate_whole_and_a_restart_finishes() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    Workload::new(31).apply(&db.pool, 60, false).await;
    let toml = format!(
        "[database]\nlock_timeout = \"60s\"\n[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n{}",
        FAST.replace("[aggregates.daily_campaign_metrics]\n", "")
    );
    let (mut worker, addr) = start_worker(&db.url, &toml);
    wait_for_metric_within(addr, CAMPAIGN_OK, 1.0, Duration::from_secs(60)).await;
    let before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&db.pool).await.unwrap();
    assert!(before > 0);

    // A long report locks the aggregate; new rows invalidate days; the next
    // refresh claims them and then waits on the lock, inside its transaction.
    let locker = db.another_pool().await;
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE reporting.daily_campaign_metrics IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    Workload::new(32).apply(&db.pool, 30, false).await;
    assert!(wait_until(Duration::from_secs(20), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    worker.signal(Signal::SIGKILL);
    worker.wait(Duration::from_secs(10)).await;
    lock.rollback().await.unwrap();

    // The killed transaction rolled back: the aggregate has its old rows, the dirty days are still recorded.
    let after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&db.pool).await.unwrap();
    assert_eq!(after, before);
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tally.invalidations").fetch_one(&db.pool).await.unwrap();
    assert!(pending > 0, "the claimed days went back with the rollback");

    let (mut restarted, addr) = start_worker(&db.url, &toml);
    assert!(
        wait_until(Duration::from_secs(60), || async {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tally.invalidations WHERE aggregate = 'daily_campaign_metrics'",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            left == 0 && metric_of(addr, CAMPAIGN_OK).await.is_some_and(|v| v >= 1.0)
        })
        .await,
        "{}",
        restarted.log()
    );
    restarted.signal(Signal::SIGTERM);
    assert_eq!(restarted.wait(Duration::from_secs(30)).await, Some(0));
    let incremental = config("[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n");
    refresh_all(&db.pool, &incremental).await;
    assert_matches_scratch(&db.pool, &incremental, "after SIGKILL and restart").await;
}

#[tokio::test]
async fn an_ingest_killed_mid_file_keeps_whole_batches_and_a_rerun_loads_the_rest_once() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 200_000, 10);
    let path = file.to_str().unwrap().to_string();
    let mut running = tally(&["ingest", &path, "--batch-rows", "1000"]).database(&db.url).spawn();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap()
    };
    assert!(wait_until(Duration::from_secs(30), || async { count().await >= 3_000 }).await);
    running.signal(Signal::SIGKILL);
    running.wait(Duration::from_secs(10)).await;
    let kept = count().await;
    assert!(kept < 200_000 && kept % 1000 == 0, "whole batches only: {kept}");

    // The same command again: what was loaded is a duplicate, the rest loads once.
    let rerun = tally(&["ingest", &path]).database(&db.url).output().await;
    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    assert!(rerun.stdout.contains(&format!("{} loaded", 200_000 - kept)), "{}", rerun.stdout);
    assert!(rerun.stdout.contains(&format!("{kept} duplicate")), "{}", rerun.stdout);
    assert_eq!(count().await, 200_000);
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(distinct, 200_000);
}

#[tokio::test]
async fn a_partition_move_killed_mid_way_loses_nothing_and_a_rerun_finishes_it() {
    let db = TestDb::migrated().await;
    let toml = "[database]\nlock_timeout = \"60s\"\n[partitions]\nrescue_batch_rows = 500\n";
    // The current and future months exist (a first maintenance run)...
    let first = tally(&["partitions"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(first.code, Some(0), "{first:?}");
    // ...then 20,000 late rows arrive for a month that has no partition: they sit in the default.
    sqlx::query(
        "INSERT INTO marketing.events (event, user_id, occurred_at)
         SELECT 'page_view', 'u' || g, '2024-01-01'::timestamptz + g * interval '2 minutes'
         FROM generate_series(1, 20000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // A reader holding one row of the middle of the month slows the move down
    // to a stop there, so it can be killed half-way.
    let holder = db.another_pool().await;
    let mut hold = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM marketing.events_default WHERE occurred_at = '2024-01-14 21:20:00+00' FOR UPDATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let mut moving = tally(&["partitions"]).database(&db.url).config_file(toml).spawn();
    assert!(wait_until(Duration::from_secs(30), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    let moved: i64 =
        sqlx::query_scalar("SELECT count(*) FROM marketing.events_p2024_01").fetch_one(&db.pool).await.unwrap();
    assert!(moved > 0, "batches were moved before the kill");
    moving.signal(Signal::SIGKILL);
    moving.wait(Duration::from_secs(10)).await;
    hold.rollback().await.unwrap();

    // Every row is in exactly one place: the default partition or the standalone month table.
    let (in_events, in_standalone): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM marketing.events), (SELECT count(*) FROM marketing.events_p2024_01)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let attached: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = 'marketing.events_p2024_01'::regclass)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(!attached, "killed before the attach");
    assert_eq!(in_events + in_standalone, 20_000);

    let rerun = tally(&["partitions"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(rerun.code, Some(0), "{rerun:?}");
    let (total, distinct, in_default): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM marketing.events_default) FROM marketing.events",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((total, distinct, in_default), (20_000, 20_000, 0));
}

#[tokio::test]
async fn a_refresh_out_of_temporary_file_space_fails_clearly_and_keeps_the_aggregate() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    sqlx::query(
        "INSERT INTO marketing.events (event, user_id, session_id, utm_source, occurred_at)
         SELECT 'page_view', 'u' || g, 's' || g, 'src' || g % 50, '2026-09-01'::timestamptz + g * interval '10 seconds'
         FROM generate_series(1, 60000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let config = config("");
    let aggregate = aggregates::find("daily_campaign_metrics").unwrap();
    let refresher = crate::harness::refresher(&db.pool, config.clone());
    assert_eq!(refresher.refresh(aggregate).await.unwrap().outcome, RefreshOutcome::Success);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&db.pool).await.unwrap();

    // Like a full disk for temporary files: sorts must spill, and may not.
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {} SET work_mem = '64kB'", db.name)))
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {} SET temp_file_limit = '64kB'", db.name)))
        .execute(&db.pool)
        .await
        .unwrap();
    let limited = db.another_pool().await;
    let refresher = crate::harness::refresher(&limited, config.clone());
    let report = refresher.refresh(aggregate).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Failure);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("temp_file_limit"), "{error}");
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&limited).await.unwrap();
    assert_eq!(kept, rows, "the aggregate keeps its contents");
    limited.close().await;

    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {} RESET ALL", db.name))).execute(&db.pool).await.unwrap();
    let fresh = db.another_pool().await;
    let refresher = crate::harness::refresher(&fresh, config.clone());
    assert_eq!(refresher.refresh(aggregate).await.unwrap().outcome, RefreshOutcome::Success);
}

#[tokio::test]
async fn of_two_replicas_one_killed_the_other_keeps_the_aggregates_fresh() {
    let db = TestDb::migrated().await;
    let (mut first, first_addr) = start_worker(&db.url, FAST);
    let (mut second, second_addr) = start_worker(&db.url, FAST);
    wait_for_metric_within(first_addr, CAMPAIGN_OK, 1.0, Duration::from_secs(60)).await;
    assert!(wait_until(Duration::from_secs(30), || async { ready(second_addr).await == Some(200) }).await);
    first.signal(Signal::SIGKILL);
    first.wait(Duration::from_secs(10)).await;

    insert_sample_events(&db.pool).await;
    assert!(sample_events_refreshed(second_addr).await, "{}", second.log());
    assert_eq!(ready(second_addr).await, Some(200));
    fast_aggregates_match_scratch(&db.pool).await;
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait(Duration::from_secs(30)).await, Some(0), "{}", second.log());
}
