//! Retention (detach, drop or keep), tables users add, and what happens
//! when a table cannot be managed or a detach was interrupted.

use std::time::Duration;

use tally::partitions::{self, ActionKind, ActionResult, ManagedTable, Month};
use tokio_util::sync::CancellationToken;

use crate::harness::{
    TestDb, backend_pid, config, count, day, done, maintain, month, partition_names, tally, wait_until,
};

#[tokio::test]
async fn retention_retires_old_months_and_a_dry_run_changes_nothing() {
    let db = TestDb::migrated().await;
    let events = ManagedTable::events();
    let months: Vec<Month> = (0..12).map(|n| month(2025, 6).plus(n)).collect(); // 2025-06 .. 2026-05
    partitions::create_months(&db.pool, &config(""), &events, &months).await.unwrap();
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) SELECT 'page_view', '2025-06-15'::timestamptz + g * interval '1 day' FROM generate_series(0, 340) g")
        .execute(&db.pool)
        .await
        .unwrap();
    let toml = "[partitions]\nretention_months = 6\npremake_months = 1\n";
    let today = day(2026, 3, 10); // keeps 2025-09 .. 2026-03 (and 2026-04), retires 2025-06 .. 2025-08

    let dry = partitions::maintain(&db.pool, &config(toml), today, true, &CancellationToken::new()).await;
    let planned: Vec<String> = dry[0]
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Retire && a.result == ActionResult::Planned)
        .map(|a| a.month.unwrap().to_string())
        .collect();
    assert_eq!(planned, ["2025-06", "2025-07", "2025-08"]);
    assert_eq!(partition_names(&db.pool, "marketing.events").await.len(), 13, "a dry run changes nothing");

    let reports = maintain(&db, toml, today).await;
    assert_eq!(done(&reports[0], "retire"), ["2025-06", "2025-07", "2025-08"]);
    let names = partition_names(&db.pool, "marketing.events").await;
    assert_eq!(names.first().map(String::as_str), Some("events_default"));
    assert_eq!(names[1], "events_p2025_09");
    assert!(names.contains(&"events_p2026_03".to_string()) && names.contains(&"events_p2026_05".to_string()));
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_class WHERE relname = 'events_p2025_06'").await, 0, "dropped");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events WHERE occurred_at < '2025-09-01'").await, 0);
    let logged = count(
        &db.pool,
        "SELECT count(*) FROM tally.partition_log WHERE action = 'retire' AND detail LIKE '%detached and dropped'",
    )
    .await;
    assert_eq!(logged, 3);

    // With retention_keep_table the month is detached but its table stays.
    let keep = "[partitions]\nretention_months = 5\npremake_months = 1\nretention_keep_table = true\n";
    let reports = maintain(&db, keep, today).await;
    assert_eq!(done(&reports[0], "retire"), ["2025-09"]);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events_p2025_09").await, 30, "kept with its rows");
    assert!(!partition_names(&db.pool, "marketing.events").await.contains(&"events_p2025_09".to_string()));
}

#[tokio::test]
async fn extra_tables_are_managed_and_detach_concurrently_without_a_default_partition() {
    let db = TestDb::migrated().await;
    sqlx::query("CREATE TABLE marketing.ad_clicks (click text, clicked_at timestamptz NOT NULL) PARTITION BY RANGE (clicked_at)")
        .execute(&db.pool)
        .await
        .unwrap();
    let toml = "[partitions]\nextra_tables = [\"marketing.ad_clicks\"]\npremake_months = 1\nretention_months = 1\n";
    let ad_clicks = ManagedTable { schema: "marketing".into(), name: "ad_clicks".into() };
    partitions::create_months(&db.pool, &config(toml), &ad_clicks, &[month(2026, 8), month(2026, 9)]).await.unwrap();
    let reports = maintain(&db, toml, day(2026, 11, 25)).await;
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].table, "marketing.ad_clicks");
    assert_eq!(done(&reports[1], "create"), ["2026-11", "2026-12"]);
    assert_eq!(done(&reports[1], "retire"), ["2026-08", "2026-09"]);
    assert_eq!(partition_names(&db.pool, "marketing.ad_clicks").await, ["ad_clicks_p2026_11", "ad_clicks_p2026_12"]);
    let concurrently =
        count(&db.pool, "SELECT count(*) FROM tally.partition_log WHERE parent = 'marketing.ad_clicks' AND detail LIKE '%detached concurrently and dropped'").await;
    assert_eq!(concurrently, 2);
}

#[tokio::test]
async fn a_table_tally_cannot_manage_is_reported_and_the_others_go_on() {
    let db = TestDb::migrated().await;
    sqlx::query("CREATE TABLE marketing.plain (id int)").execute(&db.pool).await.unwrap();
    let out = tally(&["partitions"])
        .database(&db.url)
        .config_file("[partitions]\nextra_tables = [\"marketing.plain\"]\n")
        .output()
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("marketing.events") && out.stdout.contains("create"), "{}", out.stdout);
    assert!(out.stderr.contains("marketing.plain: does not exist or is not a partitioned table"), "{}", out.stderr);
}

#[tokio::test]
async fn an_interrupted_detach_concurrently_is_finalized() {
    let db = TestDb::migrated().await;
    sqlx::query("CREATE TABLE marketing.ad_clicks (click text, clicked_at timestamptz NOT NULL) PARTITION BY RANGE (clicked_at)")
        .execute(&db.pool)
        .await
        .unwrap();
    let toml = "[partitions]\nextra_tables = [\"marketing.ad_clicks\"]\npremake_months = 0\n";
    let ad_clicks = ManagedTable { schema: "marketing".into(), name: "ad_clicks".into() };
    partitions::create_months(&db.pool, &config(toml), &ad_clicks, &[month(2026, 1)]).await.unwrap();

    // A reader keeps an old snapshot; DETACH CONCURRENTLY waits for it and is cancelled.
    let reader_pool = db.another_pool().await;
    let mut reader = reader_pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *reader).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.ad_clicks").fetch_one(&mut *reader).await.unwrap();
    let detacher_pool = db.another_pool().await;
    let mut detacher = detacher_pool.acquire().await.unwrap();
    let pid = backend_pid(&mut detacher).await;
    let detach = tokio::spawn(async move {
        sqlx::raw_sql("ALTER TABLE marketing.ad_clicks DETACH PARTITION marketing.ad_clicks_p2026_01 CONCURRENTLY")
            .execute(&mut *detacher)
            .await
    });
    assert!(wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    sqlx::query("SELECT pg_cancel_backend($1)").bind(pid).execute(&db.pool).await.unwrap();
    assert!(detach.await.unwrap().is_err());
    reader.rollback().await.unwrap();
    let pending = count(&db.pool, "SELECT count(*) FROM pg_inherits WHERE inhdetachpending").await;
    assert_eq!(pending, 1, "the detach is left pending");

    let reports = maintain(&db, toml, day(2026, 11, 25)).await;
    let finalize = reports[1].actions.iter().find(|a| a.kind == ActionKind::Finalize).expect("a finalize action");
    assert!(
        matches!(&finalize.result, ActionResult::Done { detail, .. } if detail.contains("table kept")),
        "{finalize:?}"
    );
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_inherits WHERE inhdetachpending").await, 0);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_class WHERE relname = 'ad_clicks_p2026_01'").await, 1);
}
