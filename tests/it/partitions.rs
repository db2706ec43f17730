//! Partition maintenance against real tables: premake, default-partition
//! rescue under concurrent writers, retention, lock safety, and the command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqlx::PgPool;
use tally::metrics::Metrics;
use tally::partitions::{self, ActionKind, ActionResult, MaintenanceReport, ManagedTable, Month};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestDb, config, metric, tally};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn month(y: i32, m: u32) -> Month {
    Month::new(y, m).unwrap()
}

async fn maintain(db: &TestDb, toml: &str, today: NaiveDate) -> Vec<MaintenanceReport> {
    partitions::maintain(&db.pool, &config(toml), today, false, None, &CancellationToken::new()).await
}

async fn partition_names(pool: &PgPool, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1) ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn done(report: &MaintenanceReport, kind: &str) -> Vec<String> {
    report
        .actions
        .iter()
        .filter(|a| a.kind.as_str() == kind && matches!(a.result, ActionResult::Done { .. }))
        .map(|a| a.month.map(|m| m.to_string()).unwrap_or_default())
        .collect()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn premake_creates_the_current_and_future_months_across_a_year_end_once() {
    let db = TestDb::migrated().await;
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
    assert_eq!(done(&reports[0], "create"), ["2026-11", "2026-12", "2027-01", "2027-02"]);
    assert_eq!(
        partition_names(&db.pool, "marketing.events").await,
        ["events_default", "events_p2026_11", "events_p2026_12", "events_p2027_01", "events_p2027_02"]
    );
    let text = metrics.render(chrono::Utc::now());
    assert_eq!(metric(&text, "tally_partitions{table=\"marketing.events\"}"), Some(4.0));
    assert_eq!(metric(&text, "tally_partition_future_months{table=\"marketing.events\"}"), Some(3.0));
    assert_eq!(metric(&text, "tally_default_partition_rows{table=\"marketing.events\"}"), Some(0.0));

    // A second run does nothing.
    assert!(maintain(&db, "", day(2026, 11, 30)).await[0].actions.is_empty());

    // Partitions carry the parent's indexes, and rows route to them.
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p2027_01'").await, 4);
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2027-01-31 23:59:59+00')")
        .execute(&db.pool)
        .await
        .unwrap();
    let home: String =
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(home, "marketing.events_p2027_01");
    assert_eq!(count(&db.pool, "SELECT count(*) FROM tally.partition_log WHERE action = 'create'").await, 4);
}

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
async fn another_worker_holding_the_maintenance_lock_means_skip_not_wait() {
    let db = TestDb::migrated().await;
    let other = db.another_pool().await;
    let mut holder = other.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext('marketing.events'))")
        .bind(partitions::PARTITION_LOCK_CLASS)
        .execute(&mut *holder)
        .await
        .unwrap();
    let reports = maintain(&db, "", day(2026, 11, 25)).await;
    assert_eq!(reports[0].actions.len(), 1);
    assert_eq!(reports[0].actions[0].result, ActionResult::LockedElsewhere);
    holder.rollback().await.unwrap();
    assert_eq!(done(&maintain(&db, "", day(2026, 11, 25)).await[0], "create").len(), 4);
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

    let dry = partitions::maintain(&db.pool, &config(toml), today, true, None, &CancellationToken::new()).await;
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
async fn the_command_prints_the_plan_then_the_result_then_nothing_to_do() {
    let db = TestDb::migrated().await;
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2030-01-01')")
        .execute(&db.pool)
        .await
        .unwrap();
    let dry = tally(&["partitions", "--dry-run"]).database(&db.url).output().await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    let header = dry.stdout.lines().next().unwrap_or_default();
    for column in ["TABLE", "MONTH", "ACTION", "ROWS", "RESULT"] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(dry.stdout.matches("create").count(), 4, "{}", dry.stdout);
    assert!(dry.stdout.contains("2030-01  rescue           1  planned (dry run)"), "{}", dry.stdout);
    assert_eq!(partition_names(&db.pool, "marketing.events").await, ["events_default"], "a dry run changes nothing");

    let real = tally(&["partitions"]).database(&db.url).output().await;
    assert_eq!(real.code, Some(0), "{real:?}");
    assert_eq!(real.stdout.matches("  created").count(), 4, "{}", real.stdout);
    assert!(real.stdout.contains("moved 1 rows"), "{}", real.stdout);
    assert!(
        real.stderr.contains("month=2030-01") && real.stderr.contains("action=\"rescue\""),
        "each action is logged: {}",
        real.stderr
    );

    let again = tally(&["partitions"]).database(&db.url).output().await;
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
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
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *detacher).await.unwrap();
    let detach = tokio::spawn(async move {
        sqlx::raw_sql("ALTER TABLE marketing.ad_clicks DETACH PARTITION marketing.ad_clicks_p2026_01 CONCURRENTLY")
            .execute(&mut *detacher)
            .await
    });
    assert!(
        crate::harness::wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await >= 1 })
            .await
    );
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
