//! Ingest beside other writers: two runs of one file at once load each line
//! once (one run's rows are the other's duplicates), and incremental mode's
//! triggers see every row a run loads.

use sqlx::PgPool;

use crate::harness::{TestDb, assert_rollups_match_scratch, config, create_months, generated, tally};

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn two_runs_of_one_file_at_once_load_each_line_once() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 30_000, 20);
    let path = file.to_str().unwrap();
    let first = tally(&["ingest", "--batch-rows", "2000", path]).database(&db.url).spawn();
    let second = tally(&["ingest", "--batch-rows", "2000", path]).database(&db.url).spawn();
    for mut run in [first, second] {
        assert_eq!(run.wait(std::time::Duration::from_secs(120)).await, Some(0), "{}", run.log());
    }
    assert_eq!(scalar(&db.pool, "SELECT count(*) FROM marketing.events").await, 30_000);
    let (loaded, duplicate) = (
        scalar(&db.pool, "SELECT sum(loaded)::bigint FROM tally.ingest_runs").await,
        scalar(&db.pool, "SELECT sum(duplicate)::bigint FROM tally.ingest_runs").await,
    );
    assert_eq!((loaded, duplicate), (30_000, 30_000), "each line loaded by one run, a duplicate for the other");
}

#[tokio::test]
async fn incremental_mode_sees_the_rows_a_run_loads() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let toml = "[aggregates.daily_event_counts]\nmode = \"incremental\"\n";
    let refresh = tally(&["refresh", "daily_event_counts"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(refresh.code, Some(0), "{refresh:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 5_000, 10);
    let out = tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let marked = "SELECT count(DISTINCT d)::bigint FROM tally.invalidations, generate_series(first_day, last_day, '1 day') AS d \
                  WHERE aggregate = 'daily_event_counts' AND kind = 'days'";
    assert_eq!(scalar(&db.pool, marked).await, 25, "the 25 days of the file are marked");
    let refresh = tally(&["refresh", "daily_event_counts"]).database(&db.url).config_file(toml).output().await;
    assert!(refresh.stdout.contains("(incremental, 25 days"), "{}", refresh.stdout);
    assert_rollups_match_scratch(&db.pool, &config(toml), &["daily_event_counts"], "after an ingest").await;
}
