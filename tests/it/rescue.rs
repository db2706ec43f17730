//! Rows stuck in the default partition are moved into their months, in
//! batches, while applications keep writing; and maintenance behind a long
//! reader times out and retries instead of stalling writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tally::metrics::Metrics;
use tally::partitions::{self, ActionKind, ActionResult};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestDb, config, count, day, done, maintain, metric, month};

#[tokio::test]
async fn stray_rows_are_rescued_into_their_months_at_once_when_they_fit_a_batch() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "INSERT INTO marketing.events (event_id, event, occurred_at) VALUES
         ('late-1', 'page_view', '2019-03-02'), ('late-2', 'signup', '2019-03-31 23:00+00'),
         ('future-1', 'page_view', '2027-01-15')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let metrics = Metrics::new(&[]);
    let reports = partitions::maintain(
        &db.pool,
        &config(""),
        day(2026, 11, 25),
        false,
        Some(&metrics),
        &CancellationToken::new(),
    )
    .await;
    let report = &reports[0];
    assert_eq!(done(report, "create"), ["2026-11", "2026-12", "2027-02"], "2027-01 holds stray rows: rescued instead");
    assert_eq!(done(report, "rescue"), ["2019-03", "2027-01"]);
    let details: Vec<String> = report
        .actions
        .iter()
        .filter_map(|a| match (&a.kind, &a.result) {
            (ActionKind::Rescue { rows }, ActionResult::Done { detail, .. }) => Some(format!("{rows}: {detail}")),
            _ => None,
        })
        .collect();
    assert_eq!(details, ["2: moved 2 rows", "1: moved 1 rows"]);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events_default").await, 0);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events_p2019_03").await, 2);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events WHERE event_id = 'future-1'").await, 1);
    let text = metrics.render(chrono::Utc::now());
    assert_eq!(metric(&text, "tally_default_partition_rows{table=\"marketing.events\"}"), Some(0.0));
    assert_eq!(metric(&text, "tally_partitions{table=\"marketing.events\"}"), Some(5.0));
    // The rescued months have the parent's indexes and no leftover constraint.
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p2019_03'").await, 4);
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'marketing.events_p2019_03'::regclass AND contype = 'c'").await,
        0
    );
}

/// Inserts rows until stopped, half into a month being rescued (through the
/// parent), half into the current month; returns how many and the slowest insert.
fn concurrent_writer(pool: PgPool, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(i64, Duration)> {
    tokio::spawn(async move {
        let (mut written, mut slowest) = (0i64, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            sqlx::query(
                "INSERT INTO marketing.events (event_id, event, occurred_at) VALUES
                 ('writer-' || $1, 'page_view', '2027-06-10'::timestamptz + $1 * interval '1 second'),
                 ('writer-now-' || $1, 'page_view', now())",
            )
            .bind(written)
            .execute(&pool)
            .await
            .unwrap();
            slowest = slowest.max(started.elapsed());
            written += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (written, slowest)
    })
}

#[tokio::test]
async fn a_big_month_is_moved_in_batches_while_applications_keep_writing() {
    let db = TestDb::migrated().await;
    maintain(&db, "", chrono::Utc::now().date_naive()).await;
    // 5000 rows for a month far ahead, 7 per second so occurred_at ties are common.
    sqlx::query(
        "INSERT INTO marketing.events (event_id, event, occurred_at)
         SELECT 'stray-' || g, 'page_view', '2027-06-01'::timestamptz + (g / 7) * interval '1 second'
         FROM generate_series(1, 5000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = concurrent_writer(db.another_pool().await, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let reports = maintain(&db, "[partitions]\nrescue_batch_rows = 300\n", chrono::Utc::now().date_naive()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (written, slowest) = writer.await.unwrap();

    let rescue = reports[0].actions.iter().find(|a| a.kind.as_str() == "rescue").expect("a rescue");
    assert_eq!(rescue.month, Some(month(2027, 6)));
    assert!(matches!(&rescue.result, ActionResult::Done { .. }), "{rescue:?}");
    assert!(written > 10, "the writer kept writing: {written}");
    assert!(slowest < Duration::from_secs(1), "no insert stalled: slowest took {slowest:?}");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM marketing.events_default").await, 0);
    let stray = count(&db.pool, "SELECT count(*) FROM marketing.events_p2027_06 WHERE event_id LIKE 'stray-%'").await;
    assert_eq!(stray, 5000, "none lost");
    let in_june =
        count(&db.pool, "SELECT count(*) FROM marketing.events_p2027_06 WHERE event_id LIKE 'writer-%'").await;
    assert_eq!(in_june, written, "the writer's rows for that month are all there, moved or routed");
    let total = count(&db.pool, "SELECT count(*) FROM marketing.events").await;
    let distinct = count(&db.pool, "SELECT count(DISTINCT event_id) FROM marketing.events").await;
    assert_eq!(total, 5000 + 2 * written);
    assert_eq!(distinct, total, "none duplicated");
}

#[tokio::test]
async fn behind_a_long_reader_maintenance_times_out_retries_and_never_stalls_writers() {
    let db = TestDb::migrated().await;
    maintain(&db, "[partitions]\npremake_months = 0\n", chrono::Utc::now().date_naive()).await;
    // A dashboard query that has read the whole table, default partition included, and lingers.
    let reader_pool = db.another_pool().await;
    let mut reader = reader_pool.begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&mut *reader).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        reader.rollback().await.unwrap();
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writer = concurrent_writer(db.another_pool().await, stop.clone());

    // Attaching a new month needs ACCESS EXCLUSIVE on events_default, which the reader blocks.
    let reports = maintain(&db, "[database]\nlock_timeout = \"200ms\"\n", chrono::Utc::now().date_naive()).await;
    stop.store(true, Ordering::Relaxed);
    let (written, slowest) = writer.await.unwrap();
    release.await.unwrap();

    let first = &reports[0].actions[0];
    assert_eq!(first.kind, ActionKind::Create);
    match &first.result {
        ActionResult::Done { attempts, .. } => {
            assert!(*attempts >= 2, "timed out at least once, then retried: {attempts}")
        }
        other => panic!("the month was created once the reader finished: {other:?}"),
    }
    assert!(written > 5, "{written}");
    assert!(
        slowest < Duration::from_millis(800),
        "writers waited at most about lock_timeout, not the reader's 1.5 s: {slowest:?}"
    );
}
