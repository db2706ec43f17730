//! Partition maintenance against real tables: premake, the maintenance
//! lock, and the `tally partitions` command (rescue and retention have
//! their own files).

use tally::metrics::Metrics;
use tally::partitions::{self, ActionResult};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestDb, config, count, day, done, maintain, metric, partition_names, tally};

#[tokio::test]
async fn premake_creates_the_current_and_future_months_across_a_year_end_once() {
    let db = TestDb::migrated().await;
    let metrics = Metrics::new(&[]);
    let config = config("");
    let reports = tally::maintenance::run(&db.pool, &config, day(2026, 11, 25), false, &CancellationToken::new()).await;
    tally::maintenance::record(&metrics, &config, &reports);
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
