//! What a run says about its counts: one line, one duplicate, one rejected
//! line in the singular, any other number in the plural.

use super::{EXTENDED, PLAIN, write};
use crate::harness::{TestDb, tally};

/// The summary line (stdout), without its speed and memory.
fn summary(stdout: &str) -> &str {
    let line = stdout.lines().find(|l| l.contains(" read: ")).unwrap_or_else(|| panic!("no summary in {stdout}"));
    line.split("; ").next().unwrap_or_default()
}

#[tokio::test]
async fn counts_of_one_are_singular_and_others_plural() {
    let db = TestDb::migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let one = write(dir.path(), "one.ndjson", &[PLAIN]);
    let two = write(dir.path(), "two.ndjson", &[PLAIN, EXTENDED]);
    let bad_one = write(dir.path(), "bad-one.ndjson", &["{oops"]);
    let bad_two = write(dir.path(), "bad-two.ndjson", &["{oops", "{oops"]);
    let run = |file: &std::path::Path| tally(&["ingest", file.to_str().unwrap()]).database(&db.url).output();

    let first = run(&one).await;
    assert_eq!(summary(&first.stdout), format!("{}: 1 line read: 1 loaded, 0 duplicates, 0 rejected", one.display()));
    let again = run(&one).await;
    assert_eq!(summary(&again.stdout), format!("{}: 1 line read: 0 loaded, 1 duplicate, 0 rejected", one.display()));
    let both = run(&two).await;
    assert_eq!(summary(&both.stdout), format!("{}: 2 lines read: 1 loaded, 1 duplicate, 0 rejected", two.display()));
    let twice = run(&two).await;
    assert_eq!(summary(&twice.stdout), format!("{}: 2 lines read: 0 loaded, 2 duplicates, 0 rejected", two.display()));

    let rejected = run(&bad_one).await;
    assert_eq!(rejected.code, Some(1));
    assert!(rejected.stderr.contains(": 1 line was rejected (reasons above)"), "{}", rejected.stderr);
    let rejected = run(&bad_two).await;
    assert!(rejected.stderr.contains(": 2 lines were rejected (reasons above)"), "{}", rejected.stderr);
}
