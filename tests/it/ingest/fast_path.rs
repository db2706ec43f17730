//! The COPY fast path and its ways back to the staging path: a run that
//! meets rows already loaded mid-file, a batch with a row for a month that
//! has no partition, and ids in line order either way.

use crate::harness::{TestDb, create_months, tally};

use super::{counts, write};

fn line(n: u32, at: &str) -> String {
    format!(r#"{{"_id":"f-{n}","userId":"u{n}","event":"page_view","timestamp":"{at}"}}"#)
}

async fn event_ids_by_id(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT event_id FROM marketing.events ORDER BY id").fetch_all(pool).await.unwrap()
}

#[tokio::test]
async fn rows_already_there_mid_run_are_duplicates_and_the_rest_loads_once() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let dir = tempfile::tempdir().unwrap();
    let at = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let lines = |range: std::ops::Range<u32>| range.map(|n| line(n, &at)).collect::<Vec<_>>();
    let first: Vec<String> = lines(0..30);
    let path = write(dir.path(), "first.ndjson", &first.iter().map(String::as_str).collect::<Vec<_>>());
    let out = tally(&["ingest", "--batch-rows", "10", path.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(counts(&out.stdout), (30, 30, 0, 0), "{out:?}");
    // New rows, then ten loaded before, then new rows again, one batch each.
    let second: Vec<String> = lines(30..40).into_iter().chain(lines(10..20)).chain(lines(40..50)).collect();
    let path = write(dir.path(), "second.ndjson", &second.iter().map(String::as_str).collect::<Vec<_>>());
    let out = tally(&["ingest", "--batch-rows", "10", path.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (30, 20, 10, 0), "{out:?}");
    let ids = event_ids_by_id(&db.pool).await;
    let expected: Vec<String> = (0..30).chain(30..40).chain(40..50).map(|n| format!("f-{n}")).collect();
    assert_eq!(ids, expected, "each line once, ids in line order on both paths");
    let (loaded, duplicate): (i64, i64) =
        sqlx::query_as("SELECT sum(loaded)::bigint, sum(duplicate)::bigint FROM tally.ingest_runs")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((loaded, duplicate), (50, 10));
}

#[tokio::test]
async fn a_batch_with_a_row_for_no_partition_counts_it_in_the_default() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let lines = [line(1, &now), line(2, "2019-05-05T05:05:05Z"), line(3, &now), line(4, &now)];
    let path = write(dir.path(), "mixed.ndjson", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let out = tally(&["ingest", "--batch-rows", "2", path.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (4, 4, 0, 0), "{out:?}");
    assert!(out.stdout.contains("\n1 event landed in the default partition"), "{}", out.stdout);
    let in_default: i64 =
        sqlx::query_scalar("SELECT sum(in_default)::bigint FROM tally.ingest_runs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(in_default, 1);
    assert_eq!(event_ids_by_id(&db.pool).await, ["f-1", "f-2", "f-3", "f-4"]);
}
