//! `tally partitions` and partition maintenance against real tables.

use chrono::NaiveDate;
use tally::metrics::Metrics;
use tally::partitions::{self, MANAGED_TABLES};

use crate::harness::{TestDb, config, tally};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

async fn partition_names(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'marketing.events'::regclass ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn maintenance_creates_the_current_and_premade_months_across_a_year_end_once() {
    let db = TestDb::migrated().await;
    let config = config("");
    let metrics = Metrics::new(&[]);
    let reports = partitions::maintain(&db.pool, &config, day(2026, 11, 25), false, Some(&metrics)).await.unwrap();
    assert_eq!(reports[0].created.len(), 4);
    assert_eq!(
        partition_names(&db).await,
        ["events_default", "events_p2026_11", "events_p2026_12", "events_p2027_01", "events_p2027_02"]
    );
    let text = metrics.render(chrono::Utc::now());
    assert_eq!(crate::harness::metric(&text, "tally_partitions{table=\"marketing.events\"}"), Some(4.0));
    assert_eq!(crate::harness::metric(&text, "tally_partition_future_months{table=\"marketing.events\"}"), Some(3.0));
    assert_eq!(crate::harness::metric(&text, "tally_default_partition_rows{table=\"marketing.events\"}"), Some(0.0));

    // A second run does nothing.
    let again = partitions::maintain(&db.pool, &config, day(2026, 11, 30), false, None).await.unwrap();
    assert!(again[0].created.is_empty() && again[0].plan.create.is_empty());

    // Partitions inherit the parent's indexes, and rows route to them.
    let indexes: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'events_p2027_01'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(indexes, 4);
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2027-01-31 23:59:59+00')")
        .execute(&db.pool)
        .await
        .unwrap();
    let home: String =
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(home, "marketing.events_p2027_01");
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM tally.partition_log WHERE action = 'create'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(logged, 4);
}

#[tokio::test]
async fn a_month_with_rows_in_the_default_partition_is_reported_not_broken() {
    let db = TestDb::migrated().await;
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2027-01-15'), ('signup', '2027-01-16')")
        .execute(&db.pool)
        .await
        .unwrap();
    let reports = partitions::maintain(&db.pool, &config(""), day(2026, 11, 25), false, None).await.unwrap();
    let report = &reports[0];
    assert_eq!(report.created.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["2026-11", "2026-12", "2027-02"]);
    assert_eq!(report.plan.blocked.len(), 1);
    assert_eq!(report.plan.blocked[0].0.to_string(), "2027-01");
    assert_eq!(report.plan.blocked[0].1, 2);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let state = partitions::inspect(&db.pool, &MANAGED_TABLES[0]).await.unwrap();
    assert_eq!(state.default_row_count(), 2);
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
    let reports = partitions::maintain(&db.pool, &config(""), day(2026, 11, 25), false, None).await.unwrap();
    assert!(reports[0].locked_elsewhere);
    assert!(reports[0].created.is_empty());
    holder.rollback().await.unwrap();
    let reports = partitions::maintain(&db.pool, &config(""), day(2026, 11, 25), false, None).await.unwrap();
    assert_eq!(reports[0].created.len(), 4);
}

#[tokio::test]
async fn the_command_dry_runs_then_creates_then_has_nothing_to_do() {
    let db = TestDb::migrated().await;
    let dry = tally(&["partitions", "--dry-run"]).database(&db.url).output().await;
    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert!(dry.stdout.contains("marketing.events: would create partition for"), "{}", dry.stdout);
    assert_eq!(partition_names(&db).await, ["events_default"], "a dry run changes nothing");

    let real =
        tally(&["partitions"]).database(&db.url).config_file("[partitions]\npremake_months = 2\n").output().await;
    assert_eq!(real.code, Some(0), "{real:?}");
    assert_eq!(real.stdout.matches("created partition for").count(), 3, "{}", real.stdout);

    // The default premake_months is 3: one more month.
    let again = tally(&["partitions"]).database(&db.url).output().await;
    assert_eq!(again.code, Some(0));
    assert_eq!(again.stdout.matches("created partition for").count(), 1, "{}", again.stdout);
    let third = tally(&["partitions"]).database(&db.url).output().await;
    assert!(third.stdout.contains("nothing to do"), "{}", third.stdout);
}
