//! `tally demo --once` with no DATABASE_URL: a throwaway cluster, data,
//! refreshed aggregates, a printed report, and nothing left behind.

use std::path::Path;

use crate::harness::tally;

#[tokio::test]
async fn demo_once_runs_on_a_throwaway_cluster_and_removes_it() {
    let out = tally(&["demo", "--once", "--events", "5000"]).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let header = out.stdout.lines().next().unwrap_or_default();
    for column in ["source", "campaign", "page_views", "signups", "purchases", "revenue", "spend", "roas"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(out.stdout.contains("google       brand_search"), "{}", out.stdout);
    assert!(out.stdout.contains("(none)"), "events without UTM values are reported: {}", out.stdout);
    let dir = out
        .stderr
        .split("started a throwaway PostgreSQL cluster dir=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the cluster directory is logged");
    assert!(!Path::new(dir).exists(), "{dir} was removed");
    assert!(out.stderr.contains("removed the throwaway PostgreSQL cluster"));
}
