//! Rows stuck in the default partition are moved into their months, in
//! batches, while applications keep writing; and maintenance behind a long
//! reader times out and retries instead of stalling writers. How long a
//! writer waited is the server's `lock_timeout` on its session, not a
//! stopwatch: a slow machine makes inserts slow, not wait for locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tally::metrics::Metrics;
use tally::partitions::{ActionKind, ActionResult};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::{
    Session, TestDb, backend_pid, config, count, day, done, is_lock_timeout, maintain, metric, month, wait_until,
};

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
    let config = config("");
    let reports = tally::maintenance::run(&db.pool, &config, day(2026, 11, 25), false, &CancellationToken::new()).await;
    tally::maintenance::record(&metrics, &config, &reports);
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

/// Inserts rows on `session` until stopped, half into a month being rescued
/// (through the parent), half into the current month; counts them in
/// `written`. The session's `lock_timeout` is the longest an insert may wait
/// for a lock: one held back longer fails, and with it the test.
fn concurrent_writer(mut session: Session, stop: Arc<AtomicBool>, written: Arc<AtomicI64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let n = written.load(Ordering::Relaxed);
            sqlx::query(
                "INSERT INTO marketing.events (event_id, event, occurred_at) VALUES
                 ('writer-' || $1, 'page_view', '2027-06-10'::timestamptz + $1 * interval '1 second'),
                 ('writer-now-' || $1, 'page_view', now())",
            )
            .bind(n)
            .execute(&mut session.conn)
            .await
            .unwrap_or_else(|e| match is_lock_timeout(&e) {
                true => panic!("insert {n} waited for a lock longer than the writer's lock_timeout: {e}"),
                false => panic!("insert {n} failed: {e}"),
            });
            written.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
    // No insert may wait 1 s for a lock: only the rescue's last short
    // transaction holds writers back, the batches never do.
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let writer = concurrent_writer(db.session_with_lock_timeout("1s").await, stop.clone(), written.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let reports = maintain(&db, "[partitions]\nrescue_batch_rows = 300\n", chrono::Utc::now().date_naive()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("no insert stalled: none waited 1 s for a lock");
    let written = written.load(Ordering::Relaxed);

    let rescue = reports[0].actions.iter().find(|a| a.kind.as_str() == "rescue").expect("a rescue");
    assert_eq!(rescue.month, Some(month(2027, 6)));
    assert!(matches!(&rescue.result, ActionResult::Done { .. }), "{rescue:?}");
    assert!(written > 10, "the writer kept writing: {written}");
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
    let today = chrono::Utc::now().date_naive();
    maintain(&db, "[partitions]\npremake_months = 0\n", today).await;
    // A dashboard query that has read the whole table, default partition
    // included, and lingers until this test ends it.
    let reader_pool = db.another_pool().await;
    let mut reader = reader_pool.begin().await.unwrap();
    let reader_pid = backend_pid(&mut reader).await;
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&mut *reader).await.unwrap();
    // The writer waits for a lock at most 2 s, 4 times maintenance's
    // lock_timeout: behind maintenance it waits that long at most, behind
    // the reader it would wait until the reader ends.
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let session = db.session_with_lock_timeout("2s").await;
    let writer_pid = session.pid;
    let writer = concurrent_writer(session, stop.clone(), written.clone());

    // Attaching a new month needs ACCESS EXCLUSIVE on events_default, which
    // the reader blocks; meanwhile maintenance holds writers back (SHARE on
    // the parent), for at most its lock_timeout.
    let maintenance = tokio::spawn({
        let (pool, config) = (db.pool.clone(), config("[database]\nlock_timeout = \"500ms\"\n"));
        async move { tally::partitions::maintain(&pool, &config, today, false, &CancellationToken::new()).await }
    });
    let queued = wait_until(Duration::from_secs(30), || async {
        let waits = db.lock_waits().await;
        let behind_reader: Vec<i32> =
            waits.iter().filter(|w| w.blocked_by.contains(&reader_pid)).map(|w| w.pid).collect();
        waits.iter().any(|w| w.pid == writer_pid && w.blocked_by.iter().any(|pid| behind_reader.contains(pid)))
    })
    .await;
    assert!(queued, "maintenance waits for the reader and the writer for maintenance: {:?}", db.lock_waits().await);
    // Maintenance gives up, and the writer goes on while the reader still holds its lock.
    let before = written.load(Ordering::Relaxed);
    let went_on = wait_until(Duration::from_secs(30), || async {
        written.load(Ordering::Relaxed) > before + 5 || writer.is_finished()
    })
    .await;
    assert!(went_on && !writer.is_finished(), "the writer went on while the reader still held its lock");
    reader.rollback().await.unwrap();
    let reports = maintenance.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("no insert waited for a lock past the writer's lock_timeout");

    let first = &reports[0].actions[0];
    assert_eq!(first.kind, ActionKind::Create);
    match &first.result {
        ActionResult::Done { attempts, .. } => {
            assert!(*attempts >= 2, "timed out at least once, then retried: {attempts}")
        }
        other => panic!("the month was created once the reader finished: {other:?}"),
    }
    let written = written.load(Ordering::Relaxed);
    assert!(written > 5, "{written}");
}
