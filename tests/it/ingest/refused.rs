//! Values PostgreSQL cannot store: each costs its own line, never its batch
//! or the run. Numbers beyond `numeric` and ids beyond the B-tree limit are
//! rejected by the parser; what the parser cannot foresee (a character the
//! database's encoding lacks, a check constraint, an index entry too large
//! on an index someone added) is rejected with PostgreSQL's own message,
//! while the rest of the batch loads, counts stay exact, reruns and resumes
//! load nothing twice, and the invalidation triggers see every row loaded.

use std::path::Path;

use serde_json::Value;

use super::{counts, write};
use crate::harness::{TestDb, config, tally};

/// `length` letters and digits that no compression shrinks much, as a
/// real id or hash would be (a repeated letter compresses, and then fits
/// in an index even when long).
fn random_text(seed: u64, length: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..length)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ALPHABET[(state >> 33) as usize % ALPHABET.len()] as char
        })
        .collect()
}

fn good(i: u32, day: u32) -> String {
    format!(r#"{{"_id":"g-{i}","userId":"u{i}","event":"page_view","timestamp":"2026-11-{day}T12:00:00Z"}}"#)
}

/// A document of the day nothing good happens on, with `fields` added.
fn bad(fields: &str) -> String {
    format!(r#"{{"event":"page_view","timestamp":"2026-11-25T12:00:00Z",{fields}}}"#)
}

/// The rejects file as (line, reason, text).
fn rejects(path: &Path) -> Vec<(u64, String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["reason"].as_str().unwrap().into(), v["text"].as_str().unwrap().into())
        })
        .collect()
}

async fn stored(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("SELECT event_id FROM marketing.events ORDER BY event_id").fetch_all(&db.pool).await.unwrap()
}

#[tokio::test]
async fn numbers_beyond_numeric_and_ids_beyond_the_index_limit_are_rejected_alone() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let longest_id = random_text(1, 2000);
    let lines = [
        good(1, 20),
        bad(r#""_id":"plain","properties":{"v":1e999999}"#),
        bad(r#""_id":"double","properties":{"v":{"$numberDouble":"1e999999"}}"#),
        good(2, 20),
        bad(r#""_id":"decimal","properties":{"cart":[{"price":{"$numberDecimal":"1E+999999"}}]}"#),
        bad(r#""_id":"tiny","properties":{"v":1e-999999}"#),
        bad(&format!(r#""_id":"{}""#, random_text(2, 10_000))),
        bad(&format!(r#""_id":"long-user","userId":"{}""#, random_text(3, 3_000))),
        // At the limit: loads, so the limit is below what the indexes hold.
        format!(
            r#"{{"_id":"{longest_id}","userId":"{longest_id}","event":"page_view","timestamp":"2026-11-21T12:00:00Z"}}"#
        ),
        good(3, 21),
    ];
    let file = write(dir.path(), "events.ndjson", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let rejected = dir.path().join("rejected.ndjson");
    let args = ["ingest", file.to_str().unwrap(), "--rejects", rejected.to_str().unwrap()];
    let out = tally(&args).database(&db.url).output().await;
    assert_eq!(out.code, Some(1), "rejected lines make the run fail, after loading the rest: {out:?}");
    assert_eq!(counts(&out.stdout), (10, 4, 0, 6), "{out:?}");
    let mut expected = vec!["g-1".to_string(), "g-2".into(), "g-3".into(), longest_id.clone()];
    expected.sort();
    assert_eq!(stored(&db).await, expected);

    let numeric = "a number PostgreSQL cannot store in jsonb";
    let want = [
        (2, "`properties.v` is 1e+999999, ", numeric),
        (3, "`properties.v` is 1e+999999, ", numeric),
        (5, "`properties.cart[0].price` is 1e+999999, ", numeric),
        (6, "`properties.v` is 1e-999999, ", "more than 16383 digits after the decimal point"),
        (7, "`_id` is 10000 bytes long", "limited to 2000 bytes"),
        (8, "`userId` is 3000 bytes long", "limited to 2000 bytes"),
    ];
    let found = rejects(&rejected);
    assert_eq!(found.len(), want.len(), "{found:?}");
    for ((line, reason, text), (want_line, start, middle)) in found.iter().zip(want) {
        assert_eq!(*line, want_line);
        assert!(reason.starts_with(start) && reason.contains(middle), "line {line}: {reason}");
        assert_eq!(text, &lines[want_line as usize - 1]);
        assert!(out.stderr.contains(&format!("line {line}: {start}")), "{}", out.stderr);
    }

    let again = tally(&args).database(&db.url).output().await;
    assert_eq!(again.code, Some(1), "{again:?}");
    assert_eq!(counts(&again.stdout), (10, 0, 4, 6), "a rerun loads nothing twice and rejects the same lines");
    assert_eq!(stored(&db).await.len(), 4);
}

/// Lines only PostgreSQL knows it refuses, in a LATIN1 database with a check
/// constraint and an index on `session_id` (which the query doctor may suggest).
fn refused_by_the_server() -> Vec<String> {
    let mut lines: Vec<String> = (1..=4).map(|i| good(i, 20)).collect();
    lines.push(bad(r#""_id":"rocket","properties":{"note":"launch 🚀"}"#));
    lines.extend((5..=7).map(|i| good(i, 20)));
    lines.push(r#"{"_id":"forbidden","event":"forbidden","timestamp":"2026-11-25T12:00:00Z"}"#.to_string());
    lines.push(good(8, 21));
    lines.push(bad(&format!(r#""_id":"long-session","session":"{}""#, random_text(4, 3_000))));
    lines.extend((9..=10).map(|i| good(i, 21)));
    lines.push(bad(r#""_id":"also-a-rocket","properties":{"note":"🚀"}"#));
    lines
}

#[tokio::test]
async fn rows_the_server_refuses_are_rejected_with_its_reason_and_their_batches_load() {
    let db = TestDb::latin1().await;
    sqlx::raw_sql(
        "ALTER TABLE marketing.events ADD CONSTRAINT no_forbidden_events CHECK (event <> 'forbidden');
         CREATE INDEX events_session_id_idx ON marketing.events (session_id);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let incremental = config("[aggregates.daily_event_counts]\nmode = \"incremental\"\n");
    tally::aggregates::triggers::ensure(&db.pool, &incremental).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = refused_by_the_server();
    let file = write(dir.path(), "events.ndjson", &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let rejected = dir.path().join("rejected.ndjson");
    let path = file.to_str().unwrap();
    let ingest = |extra: &[&str]| {
        let mut args = vec!["ingest", path, "--batch-rows", "4", "--rejects", rejected.to_str().unwrap()];
        args.extend_from_slice(extra);
        tally(&args).database(&db.url).output()
    };

    // Resumed after the first batch (lines 1-4), then the whole file, then again.
    let resumed = ingest(&["--skip-lines", "4"]).await;
    assert_eq!(resumed.code, Some(1), "{resumed:?}");
    assert_eq!(counts(&resumed.stdout), (10, 6, 0, 4), "{resumed:?}");
    let whole = ingest(&[]).await;
    assert_eq!(counts(&whole.stdout), (14, 4, 6, 4), "{whole:?}");
    let again = ingest(&[]).await;
    assert_eq!(counts(&again.stdout), (14, 0, 10, 4), "{again:?}");
    let mut expected: Vec<String> = (1..=10).map(|i| format!("g-{i}")).collect();
    expected.sort();
    assert_eq!(stored(&db).await, expected, "each good line once");

    let reasons = [
        (5, "has no equivalent in encoding \"LATIN1\" (SQLSTATE 22P05)"),
        (9, "violates check constraint \"no_forbidden_events\" (SQLSTATE 23514)"),
        (11, "(SQLSTATE 54000)"),
        (14, "has no equivalent in encoding \"LATIN1\" (SQLSTATE 22P05)"),
    ];
    let found = rejects(&rejected);
    assert_eq!(found.len(), 3 * reasons.len(), "three runs: {found:?}");
    for (i, (line, reason, text)) in found.iter().enumerate() {
        let (want_line, want) = reasons[i % reasons.len()];
        assert_eq!(*line, want_line);
        assert!(reason.starts_with("PostgreSQL refused it: ") && reason.contains(want), "line {line}: {reason}");
        assert_eq!(text, &lines[want_line as usize - 1], "the line as it was read");
    }
    assert!(whole.stderr.contains("line 9: PostgreSQL refused it: "), "{}", whole.stderr);

    // Every run's counts add up and its batches committed whole.
    let runs: Vec<(i64, i64, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT lines, loaded, duplicate, rejected, last_line, status FROM tally.ingest_runs ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let completed = |lines, loaded, duplicate| (lines, loaded, duplicate, 4, 14, "completed".to_string());
    assert_eq!(runs, [completed(10, 6, 0), completed(14, 4, 6), completed(14, 0, 10)]);

    // The triggers saw the loaded rows (days 20 and 21), and no refused one (day 25).
    let days: Vec<(String, String)> = sqlx::query_as(
        "SELECT first_day::text, last_day::text FROM tally.invalidations
         WHERE aggregate = 'daily_event_counts' AND kind = 'days'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let covered = |day: &str| days.iter().any(|(first, last)| first.as_str() <= day && day <= last.as_str());
    assert!(covered("2026-11-20") && covered("2026-11-21"), "{days:?}");
    assert!(!covered("2026-11-25"), "{days:?}");
}
