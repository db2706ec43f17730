//! Guards on how `tally ingest` is called: a `--rejects` file that is the
//! input under any name, `-`, or a directory is refused before anything is
//! read or written, and `--skip-lines` past the end of the input says so.

use std::path::Path;

use super::{EXTENDED, PLAIN, counts, write};
use crate::harness::{TallyCommand, TestDb, tally};

/// Runs `command` and checks it was refused as the same file, with nothing
/// read, written or recorded.
async fn assert_refused(db: &TestDb, command: TallyCommand, names: &[&str], input: &Path, original: &[u8]) {
    let out = command.database(&db.url).output().await;
    assert_eq!(out.code, Some(2), "refused as a usage error: {out:?}");
    for name in names {
        assert!(out.stderr.contains(name), "the message names {name}: {}", out.stderr);
    }
    assert!(out.stderr.contains("same file") && out.stderr.contains("another path"), "{}", out.stderr);
    assert_eq!(std::fs::read(input).unwrap(), original, "the input is untouched");
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM tally.ingest_runs").fetch_one(&db.pool).await.unwrap();
    assert_eq!(runs, 0, "no run started");
}

#[tokio::test]
async fn a_rejects_file_that_is_the_input_under_any_name_is_refused() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "events.ndjson", &[PLAIN, "{not json", EXTENDED]);
    let original = std::fs::read(&input).unwrap();
    let path = input.to_str().unwrap();
    let symlink = dir.path().join("link.ndjson");
    std::os::unix::fs::symlink(&input, &symlink).unwrap();
    let hard_link = dir.path().join("hard.ndjson");
    std::fs::hard_link(&input, &hard_link).unwrap();

    assert_refused(&db, tally(&["ingest", path, "--rejects", path]), &[path], &input, &original).await;
    let link = symlink.to_str().unwrap();
    assert_refused(&db, tally(&["ingest", path, "--rejects", link]), &[path, link], &input, &original).await;
    let hard = hard_link.to_str().unwrap();
    assert_refused(&db, tally(&["ingest", hard, "--rejects", path]), &[hard, path], &input, &original).await;

    // The input by a relative path (from the working directory) and by its absolute path.
    let mut relative = tally(&["ingest", "./events.ndjson", "--rejects", path]);
    relative.command.current_dir(dir.path());
    assert_refused(&db, relative, &["./events.ndjson", path], &input, &original).await;

    // stdin redirected from the file (`tally ingest - < events.ndjson`).
    let mut from_stdin = tally(&["ingest", "-", "--rejects", link]);
    from_stdin.command.stdin(std::fs::File::open(&input).unwrap());
    assert_refused(&db, from_stdin, &["stdin", link], &input, &original).await;

    // Another existing file is fine: the run reads the input and appends there.
    let rejects = write(dir.path(), "rejects.ndjson", &[r#"{"line":9,"reason":"from an earlier run"}"#]);
    let out = tally(&["ingest", path, "--rejects", rejects.to_str().unwrap()]).database(&db.url).output().await;
    assert_eq!(out.code, Some(1), "one line rejected: {out:?}");
    assert_eq!(counts(&out.stdout), (3, 2, 0, 1));
    assert_eq!(std::fs::read_to_string(&rejects).unwrap().lines().count(), 2, "appended");
    assert_eq!(std::fs::read(&input).unwrap(), original);
}

#[tokio::test]
async fn rejects_to_a_dash_or_a_directory_is_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "events.ndjson", &[PLAIN, "{not json"]);
    let path = input.to_str().unwrap();
    // Nothing listens there: a run that got as far as connecting would fail otherwise.
    let nowhere = "postgres://postgres@127.0.0.1:9/nowhere";
    let refused = |rejects: &str| {
        let mut command = tally(&["ingest", path, "--rejects", rejects]).env("DATABASE_URL", nowhere);
        command.command.current_dir(dir.path());
        command.output()
    };

    let dash = refused("-").await;
    assert_eq!(dash.code, Some(2), "a usage error: {dash:?}");
    assert!(dash.stderr.contains("name a file for --rejects") && dash.stderr.contains("stderr"), "{}", dash.stderr);
    assert!(!dir.path().join("-").exists(), "no file named -");

    let directory = refused(dir.path().to_str().unwrap()).await;
    assert_eq!(directory.code, Some(2), "{directory:?}");
    assert!(directory.stderr.contains("is a directory: name a file"), "{}", directory.stderr);
    let missing = dir.path().join("no-such-dir/rejected.ndjson");
    let nowhere_dir = refused(missing.to_str().unwrap()).await;
    assert_eq!(nowhere_dir.code, Some(2), "{nowhere_dir:?}");
    assert!(nowhere_dir.stderr.contains("does not exist"), "{}", nowhere_dir.stderr);
    assert!(!nowhere_dir.stderr.contains("nowhere:") && !dash.stderr.contains("connect"), "{}", dash.stderr);
}

#[tokio::test]
async fn skipping_past_the_end_of_the_input_warns_that_nothing_was_loaded() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "events.ndjson", &[PLAIN, EXTENDED, PLAIN]);
    let path = file.to_str().unwrap();

    let beyond = tally(&["ingest", path, "--skip-lines", "5"]).database(&db.url).output().await;
    assert_eq!(beyond.code, Some(0), "nothing lost, nothing doubled: {beyond:?}");
    assert_eq!(counts(&beyond.stdout), (0, 0, 0, 0));
    assert!(
        beyond.stderr.contains("warning")
            && beyond.stderr.contains("--skip-lines 5")
            && beyond.stderr.contains("has only 3 lines")
            && beyond.stderr.contains("nothing was loaded"),
        "{}",
        beyond.stderr
    );

    // Skipping exactly the whole file is the resume of a run that committed it all: no warning.
    let exact = tally(&["ingest", path, "--skip-lines", "3"]).database(&db.url).output().await;
    assert_eq!(exact.code, Some(0), "{exact:?}");
    assert!(!exact.stderr.contains("has only"), "{}", exact.stderr);
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(&db.pool).await.unwrap();
    assert_eq!(loaded, 0);
}
