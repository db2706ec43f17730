//! `tally ingest` against real PostgreSQL, with files written here: plain and
//! Extended JSON, every rejection reason, duplicates, stdin, gzip, bounded
//! memory on a large file, and an interrupted run resumed. Other export
//! formats are in `formats`, guards on the arguments in `safeguards`, values
//! PostgreSQL cannot store in `refused`, singular and plural in `wording`.

mod concurrent;
mod fast_path;
mod formats;
mod refused;
mod safeguards;
mod wording;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{TestDb, free_addr, generated, http_get, metric, tally, wait_until};

fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// The summary line's counts: (lines, loaded, duplicates, rejected), read
/// from `N line(s) read: N loaded, N duplicate(s), N rejected`.
fn counts(stdout: &str) -> (u64, u64, u64, u64) {
    let line = stdout.lines().find(|l| l.contains(" read: ")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    let number = |marker: &str| -> u64 {
        let before = line.split(marker).next().unwrap_or_default();
        before
            .rsplit([' ', ':'])
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{marker} in {line}"))
    };
    let read = if line.contains(" line read: ") { " line read" } else { " lines read" };
    let duplicates = if line.contains(" 1 duplicate,") { " duplicate," } else { " duplicates" };
    (number(read), number(" loaded"), number(duplicates), number(" rejected"))
}

type StoredEvent = (String, Option<String>, String, String, Option<String>);

const PLAIN: &str = r#"{"_id": "p-1", "userId": "u1", "event": "page_view", "properties": {"url": "/pricing", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"}, "session": "s1", "timestamp": "2026-11-20T10:00:00Z"}"#;
const EXTENDED: &str = r#"{"_id":{"$oid":"65f1a2b3c4d5e6f708192a3b"},"userId":{"$oid":"64aaaaaaaaaaaaaaaaaaaaaa"},"event":"purchase","properties":{"revenue":{"$numberDecimal":"1234.5678901234"},"utm_source":"google","utm_medium":"cpc","utm_campaign":"brand"},"session":"s2","timestamp":{"$date":{"$numberLong":"1795255200000"}}}"#;

#[tokio::test]
async fn plain_and_extended_json_load_and_decimals_reach_the_aggregates_exactly() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.ndjson", &[PLAIN, EXTENDED]);
    let out = tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (2, 2, 0, 0));
    let rows: Vec<StoredEvent> = sqlx::query_as(
        "SELECT event_id, user_id, event, properties::text, utm_campaign FROM marketing.events ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, "p-1");
    assert_eq!(rows[1].0, "65f1a2b3c4d5e6f708192a3b");
    assert_eq!(rows[1].1.as_deref(), Some("64aaaaaaaaaaaaaaaaaaaaaa"));
    assert!(rows[1].3.contains(r#""revenue": 1234.5678901234"#), "{}", rows[1].3);
    assert_eq!(rows[1].4.as_deref(), Some("brand"));

    let refresh = tally(&["refresh", "daily_campaign_metrics"]).database(&db.url).output().await;
    assert_eq!(refresh.code, Some(0), "{refresh:?}");
    let revenue: String = sqlx::query_scalar("SELECT sum(revenue)::text FROM reporting.daily_campaign_metrics")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(revenue, "1234.5678901234", "never rounded through a float");
}

#[tokio::test]
async fn every_line_is_loaded_a_duplicate_or_rejected_with_its_reason() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let long =
        format!(r#"{{"event":"x","timestamp":"2026-11-20T10:00:00Z","properties":{{"pad":"{}"}}}}"#, "a".repeat(300));
    let file = write(
        dir.path(),
        "mixed.ndjson",
        &[
            PLAIN,
            "{not json",
            r#"{"timestamp":"2026-11-20T10:00:00Z"}"#,
            r#"{"event":"x"}"#,
            r#"{"event":"x","timestamp":"last tuesday"}"#,
            r#"{"event":"x","timestamp":"2026-11-20T10:00:00Z","properties":"oops"}"#,
            &long,
            "",
            PLAIN,
        ],
    );
    let rejects = dir.path().join("rejects.ndjson");
    let out =
        tally(&["ingest", file.to_str().unwrap(), "--rejects", rejects.to_str().unwrap(), "--max-line-bytes", "300"])
            .database(&db.url)
            .output()
            .await;
    assert_eq!(out.code, Some(1), "rejected lines make the run fail: {out:?}");
    let (lines, loaded, duplicates, rejected) = counts(&out.stdout);
    assert_eq!((lines, loaded, duplicates, rejected), (9, 1, 1, 7));
    assert_eq!(loaded + duplicates + rejected, lines);
    assert!(out.stderr.contains("7 lines were rejected") && out.stderr.contains("--allow-rejects"), "{}", out.stderr);
    let reasons: Vec<(u64, String)> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["reason"].as_str().unwrap().to_string())
        })
        .collect();
    let expected = [
        (2, "not JSON"),
        (3, "no `event`"),
        (4, "no timestamp"),
        (5, "unparsable `timestamp`"),
        (6, "`properties` must be an object, found a string"),
        (7, "longer than the 300 bytes allowed"),
        (8, "empty line"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for ((line, reason), (want_line, want)) in reasons.iter().zip(expected) {
        assert_eq!(*line, want_line);
        assert!(reason.contains(want), "line {line}: {reason}");
        assert!(out.stderr.contains(&format!("line {line}: ")), "reasons are on stderr too");
    }
    let allowed = tally(&["ingest", file.to_str().unwrap(), "--allow-rejects", "--max-line-bytes", "300"])
        .database(&db.url)
        .output()
        .await;
    assert_eq!(allowed.code, Some(0), "{allowed:?}");
    assert_eq!(counts(&allowed.stdout), (9, 0, 2, 7), "nothing is loaded twice");
}

#[tokio::test]
async fn stdin_and_gzip_are_read_and_a_rerun_loads_nothing_twice() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "events.ndjson", &[PLAIN, EXTENDED]);
    let gz = dir.path().join("events.ndjson.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    encoder.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    encoder.finish().unwrap();

    let first = tally(&["ingest", gz.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(counts(&first.stdout), (2, 2, 0, 0), "{first:?}");
    let mut command = tally(&["ingest", "-"]).database(&db.url);
    command.command.stdin(std::process::Stdio::piped());
    let mut child = command.command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &std::fs::read(&plain).unwrap()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("-: "), "{stdout}");
    assert_eq!(counts(&stdout), (2, 0, 2, 0));
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(total, 2);
}

#[tokio::test]
async fn timestamps_without_a_partition_land_in_the_default_and_are_reported() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file =
        write(dir.path(), "old.ndjson", &[r#"{"_id":"old","event":"page_view","timestamp":"2019-05-05T05:05:05Z"}"#]);
    let out = tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("\n1 event landed in the default partition (no partition for its month yet)"),
        "{}",
        out.stdout
    );
    let rescued = tally(&["partitions"]).database(&db.url).output().await;
    assert!(rescued.stdout.contains("2019-05  rescue"), "{}", rescued.stdout);
    let home: String =
        sqlx::query_scalar("SELECT tableoid::regclass::text FROM marketing.events WHERE event_id = 'old'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(home, "marketing.events_p2019_05");
}

#[tokio::test]
async fn a_file_much_larger_than_memory_is_streamed() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    // 1200 lines of 100 KiB: 117 MiB of input, about 25 batches (a batch is
    // at most 8 MiB of rows and their text; two wait between reader and
    // loader). Streamed, the peak stays at 55-80 MiB whatever the size; an
    // ingest that held the whole file would need all of it on top of the
    // process's own ~20 MiB: more than the input.
    let file = generated(dir.path(), 1_200, 100 << 10);
    let input_mib = std::fs::metadata(&file).unwrap().len() >> 20;
    let out = tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(counts(&out.stdout), (1_200, 1_200, 0, 0));
    let peak: u64 = out
        .stdout
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the summary reports peak memory");
    assert!(peak < input_mib, "peak memory {peak} MiB for a {input_mib} MiB input: not streamed");
}

#[tokio::test]
async fn an_interrupted_run_keeps_whole_batches_and_says_where_to_resume() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 200_000, 10);
    let path = file.to_str().unwrap().to_string();
    let mut running = tally(&["ingest", &path, "--batch-rows", "1000"]).database(&db.url).spawn();
    let committed = wait_until(Duration::from_secs(30), || async {
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(last_line), 0) FROM tally.ingest_runs")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        last >= 2_000
    })
    .await;
    assert!(committed);
    running.signal(Signal::SIGINT);
    assert_eq!(running.wait(Duration::from_secs(30)).await, Some(1));
    let log = running.log();
    let resume: u64 = log
        .split("resume with --skip-lines ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume hint in {log}"));
    assert!(resume < 200_000 && resume.is_multiple_of(1000), "whole batches only: {resume}");
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(loaded as u64, resume, "exactly the lines up to the resume point are in");
    let status: String = sqlx::query_scalar("SELECT status FROM tally.ingest_runs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(status, "interrupted");

    let rest = tally(&["ingest", &path, "--skip-lines", &resume.to_string()]).database(&db.url).output().await;
    assert_eq!(rest.code, Some(0), "{rest:?}");
    let (lines, loaded_now, duplicates, _) = counts(&rest.stdout);
    assert_eq!((lines, loaded_now, duplicates), (200_000 - resume, 200_000 - resume, 0));
    assert!(rest.stdout.contains(&format!("({resume} skipped)")), "{}", rest.stdout);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(total, 200_000);
}

#[tokio::test]
async fn the_worker_exports_what_ingest_runs_loaded() {
    let db = TestDb::migrated().await;
    let addr = free_addr();
    let mut worker = tally(&["run"]).database(&db.url).env("TALLY_METRICS_ADDR", &addr.to_string()).spawn();
    worker.wait_for_log("worker running", Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.ndjson", &[PLAIN, EXTENDED, "{oops", PLAIN]);
    let out = tally(&["ingest", file.to_str().unwrap(), "--allow-rejects"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let series = |outcome: &str| format!("tally_ingest_rows_total{{outcome=\"{outcome}\"}}");
    let seen = wait_until(Duration::from_secs(20), || async {
        let text = http_get(addr, "/metrics").await.map(|(_, body)| body).unwrap_or_default();
        metric(&text, &series("loaded")) == Some(2.0)
            && metric(&text, &series("duplicate")) == Some(1.0)
            && metric(&text, &series("rejected")) == Some(1.0)
    })
    .await;
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0));
    assert!(seen, "tally_ingest_rows_total follows ingest runs within 10 s");
}
