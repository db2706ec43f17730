//! The audit's rules on indexes written by hand: which index of a pair is
//! kept, when "no scan" means unused, and what tally's own indexes get.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::postgres::types::Oid;

use super::statistics::{DEFAULT_MIN_AGE, Statistics, StatsSource};
use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).single().unwrap()
}

/// Statistics counted for `days` days, as of 2026-11-30 12:00 UTC.
fn counted_for(days: u64) -> Statistics {
    let age = Duration::from_secs(days * 86_400);
    Statistics {
        since: now() - chrono::Duration::from_std(age).unwrap(),
        source: StatsSource::DatabaseReset,
        age,
        now: now(),
    }
}

/// tally's record of an index present when it started keeping sightings.
fn at_install() -> Option<Sighting> {
    Some(Sighting { index_oid: Oid(1), first_seen: now() - chrono::Duration::days(90), at_install: true })
}

/// tally's record of an index it first saw `ago` before now.
fn first_seen(ago: Duration) -> Option<Sighting> {
    Some(Sighting {
        index_oid: Oid(2),
        first_seen: now() - chrono::Duration::from_std(ago).unwrap(),
        at_install: false,
    })
}

/// The findings on statistics a month old, with the default threshold.
fn judge(indexes: &[AuditIndex]) -> Vec<AuditFinding> {
    audit(indexes, &counted_for(30), DEFAULT_MIN_AGE).findings
}

fn index(name: &str, columns: &[&str]) -> AuditIndex {
    AuditIndex {
        index: format!("app.{name}"),
        table: "app.leads".into(),
        method: "btree".into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        signature: columns.iter().map(|c| format!("{c} 1978 0 100")).collect(),
        valid: true,
        scans: 5,
        table_reads: 10,
        using: format!("btree ({})", columns.join(", ")),
        sighting: at_install(),
        ..AuditIndex::default()
    }
}

fn kinds(findings: &[AuditFinding]) -> Vec<(AuditKind, String)> {
    findings.iter().map(|f| (f.kind, f.index.clone())).collect()
}

#[test]
fn a_plain_index_beside_a_unique_constraint_is_the_duplicate() {
    let unique =
        AuditIndex { unique: true, constraint: Some("leads_email_key".into()), ..index("leads_email_key", &["email"]) };
    let plain = index("leads_email_idx", &["email"]);
    let found = judge(&[plain.clone(), unique]);
    assert_eq!(kinds(&found), [(AuditKind::DuplicateIndex, "app.leads_email_idx".into())]);
    assert!(found[0].problem.contains("backs constraint leads_email_key"), "{}", found[0].problem);
    assert_eq!(found[0].sql, ["DROP INDEX CONCURRENTLY IF EXISTS app.leads_email_idx;"]);
}

#[test]
fn of_two_equal_indexes_the_more_used_is_kept_and_opclasses_matter() {
    let a = AuditIndex { scans: 100, ..index("a", &["source"]) };
    let b = AuditIndex { scans: 1, ..index("b", &["source"]) };
    assert_eq!(kinds(&judge(&[a.clone(), b.clone()])), [(AuditKind::DuplicateIndex, "app.b".into())]);
    let pattern = AuditIndex { signature: vec!["source 10050 0 100".into()], ..b };
    assert_eq!(judge(&[a, pattern]), []);
}

#[test]
fn a_btree_prefix_of_another_is_redundant_unless_unique_or_partial_differs() {
    let short = index("by_source", &["source"]);
    let long = index("by_source_day", &["source", "day"]);
    assert_eq!(kinds(&judge(&[short.clone(), long.clone()])), [(AuditKind::RedundantIndex, "app.by_source".into())]);
    let unique = AuditIndex { unique: true, ..short.clone() };
    assert_eq!(judge(&[unique, long.clone()]), []);
    let partial = AuditIndex { predicate: Some("source IS NOT NULL".into()), ..short.clone() };
    assert_eq!(judge(&[partial, long.clone()]), []);
    let gin = AuditIndex { method: "gin".into(), ..short };
    assert_eq!(judge(&[gin, long]), []);
}

#[test]
fn unused_needs_zero_scans_a_read_table_and_no_constraint() {
    let unused_one = AuditIndex { scans: 0, size_bytes: 3 << 20, ..index("by_campaign", &["campaign"]) };
    let found = judge(std::slice::from_ref(&unused_one));
    assert_eq!(kinds(&found), [(AuditKind::UnusedIndex, "app.by_campaign".into())]);
    assert!(found[0].problem.contains("3.0 MB") && found[0].problem.contains("read 10 times"), "{}", found[0].problem);
    let never_read = AuditIndex { table_reads: 0, ..unused_one.clone() };
    assert_eq!(judge(&[never_read]), []);
    let primary = AuditIndex { unique: true, constraint: Some("pk".into()), ..unused_one.clone() };
    assert_eq!(judge(&[primary]), []);
    let partitioned = AuditIndex { partitioned: true, ..unused_one };
    assert_eq!(judge(&[partitioned])[0].sql, ["SET lock_timeout = '2s';", "DROP INDEX IF EXISTS app.by_campaign;"]);
}

#[test]
fn invalid_indexes_are_rebuilt_or_completed_partition_by_partition() {
    let broken = AuditIndex { valid: false, unique: true, ..index("leads_email_uniq", &["email"]) };
    let found = judge(std::slice::from_ref(&broken));
    assert_eq!(kinds(&found), [(AuditKind::InvalidIndex, "app.leads_email_uniq".into())]);
    assert_eq!(found[0].sql, ["REINDEX INDEX CONCURRENTLY app.leads_email_uniq;"]);
    let building = AuditIndex { in_progress: true, ..broken };
    assert_eq!(judge(&[building]), []);
    let parent = AuditIndex {
        valid: false,
        partitioned: true,
        missing_partitions: vec!["app.events_p2026_12".into()],
        using: "btree (source)".into(),
        ..index("events_source_idx", &["source"])
    };
    assert_eq!(
        judge(&[parent])[0].sql,
        [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_p2026_12_events_source_idx ON app.events_p2026_12 \
             USING btree (source);",
            "ALTER INDEX app.events_source_idx ATTACH PARTITION app.events_p2026_12_events_source_idx;"
        ]
    );
}

#[test]
fn a_unique_partitioned_index_is_completed_as_unique_in_each_leafs_schema() {
    let parent = AuditIndex {
        valid: false,
        unique: true,
        partitioned: true,
        missing_partitions: vec!["archive.events_p2020_01".into()],
        using: "btree (source)".into(),
        ..index("events_source_key", &["source"])
    };
    assert_eq!(
        judge(&[parent])[0].sql,
        [
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_p2020_01_events_source_key ON \
             archive.events_p2020_01 USING btree (source);",
            "ALTER INDEX app.events_source_key ATTACH PARTITION archive.events_p2020_01_events_source_key;"
        ]
    );
}

#[test]
fn an_index_a_constraint_or_replica_identity_needs_is_never_dropped() {
    for needed in ["orders_customer_fk", "REPLICA IDENTITY"] {
        let a = AuditIndex { scans: 0, constraint: Some(needed.into()), ..index("needed", &["email"]) };
        let b = AuditIndex { scans: 9, ..index("other", &["email"]) };
        let found = judge(&[a, b]);
        assert!(found.iter().all(|f| f.index != "app.needed"), "{needed}: {found:#?}");
    }
}

/// `name` on `table` as tally's migrations create it, with no scans.
fn tally_index(name: &str, table: &str, columns: &[&str]) -> AuditIndex {
    AuditIndex {
        index: format!("marketing.{name}"),
        table: format!("marketing.{table}"),
        scans: 0,
        ..index(name, columns)
    }
}

#[test]
fn no_index_is_called_unused_before_the_statistics_are_old_enough() {
    let unused_one = AuditIndex { scans: 0, ..index("by_campaign", &["campaign"]) };
    let tally = tally_index("events_occurred_at_idx", "events", &["occurred_at"]);
    let indexes = [unused_one, tally];
    let young = audit(&indexes, &counted_for(2), DEFAULT_MIN_AGE);
    assert_eq!((young.findings, young.unscanned, young.unscanned_tally), (vec![], 1, 1));
    // The threshold is the user's: zero judges now.
    let now = audit(&indexes, &counted_for(2), Duration::ZERO);
    assert_eq!(
        kinds(&now.findings),
        [
            (AuditKind::UnusedIndex, "app.by_campaign".into()),
            (AuditKind::TallyIndex, "marketing.events_occurred_at_idx".into())
        ]
    );
    // The finding dates the window exactly as the header does.
    assert!(
        now.findings[0].problem.contains(&format!("no index scan since {}", counted_for(2).since_text())),
        "{}",
        now.findings[0].problem
    );
}

#[test]
fn tally_s_own_indexes_get_what_they_serve_and_never_a_drop() {
    let found = judge(&[
        tally_index("events_occurred_at_idx", "events", &["occurred_at"]),
        tally_index("conversions_lead_id_idx", "conversions", &["lead_id"]),
    ]);
    assert_eq!(found.len(), 2, "{found:#?}");
    for f in &found {
        assert_eq!((f.kind, f.sql.len()), (AuditKind::TallyIndex, 0), "{f:#?}");
    }
    assert!(found[0].fix.contains("tally's migration 0003_events creates it for time ranges"), "{}", found[0].fix);
    assert!(found[1].fix.contains("the foreign-key check when a lead is deleted"), "{}", found[1].fix);
    // A user's index a foreign key's checks need is not unused either, only quiet.
    let fk =
        AuditIndex { scans: 0, foreign_key: Some("orders_customer_fk".into()), ..index("by_customer", &["customer"]) };
    assert_eq!(judge(&[fk]), []);
}

#[test]
fn next_to_tally_s_index_the_user_s_copy_or_prefix_is_the_one_to_drop() {
    // A user's copy of tally's index, scanned more: still the user's goes.
    let tally = AuditIndex { scans: 3, ..tally_index("events_occurred_at_idx", "events", &["occurred_at"]) };
    let copy = AuditIndex { scans: 500, ..tally_index("events_at", "events", &["occurred_at"]) };
    let found = judge(&[copy.clone(), tally.clone()]);
    assert_eq!(kinds(&found), [(AuditKind::DuplicateIndex, "marketing.events_at".into())], "{found:#?}");
    // tally's index as the prefix of a longer index of the user's: a note, no drop.
    let longer = AuditIndex { scans: 9, ..tally_index("events_at_event", "events", &["occurred_at", "event"]) };
    let found = judge(&[tally, longer]);
    assert_eq!(kinds(&found), [(AuditKind::TallyIndex, "marketing.events_occurred_at_idx".into())]);
    assert!(found[0].problem.contains("is a prefix of marketing.events_at_event"), "{}", found[0].problem);
    assert!(found[0].sql.is_empty());
}

#[test]
fn an_invalid_tally_index_is_repaired_by_tally_migrate() {
    let broken = AuditIndex { valid: false, ..tally_index("leads_created_at_idx", "leads", &["created_at"]) };
    let found = judge(&[broken]);
    assert_eq!(kinds(&found), [(AuditKind::InvalidIndex, "marketing.leads_created_at_idx".into())]);
    assert!(found[0].fix.starts_with("run `tally migrate`"), "{}", found[0].fix);
    assert!(found[0].sql.is_empty() && !found[0].fix.contains("drop it"), "{:#?}", found[0]);
    // One tally does not rebuild itself: rebuilt, never dropped.
    let other = AuditIndex { valid: false, ..tally_index("events_occurred_at_idx", "events", &["occurred_at"]) };
    let found = judge(&[other]);
    assert_eq!(found[0].sql, ["REINDEX INDEX CONCURRENTLY marketing.events_occurred_at_idx;"]);
    assert!(found[0].fix.starts_with("rebuild it; do not drop it"), "{}", found[0].fix);
}

#[test]
fn an_index_tally_saw_minutes_ago_is_held_back_however_old_the_statistics() {
    // The hostile tester's case: a month of statistics, an index created (and
    // first seen) 3 minutes ago, and one first seen two days ago; both unscanned.
    let brand_new =
        AuditIndex { scans: 0, sighting: first_seen(Duration::from_secs(180)), ..index("brand_new_idx", &["a"]) };
    let older =
        AuditIndex { scans: 0, sighting: first_seen(Duration::from_secs(2 * 86_400)), ..index("older_idx", &["b"]) };
    let hour = Duration::from_secs(3_600);
    let judged = audit(&[brand_new.clone(), older.clone()], &counted_for(30), hour);
    assert_eq!(kinds(&judged.findings), [(AuditKind::UnusedIndex, "app.older_idx".into())]);
    assert!(
        judged.findings[0].problem.contains("no index scan since 2026-11-28 12:00 UTC (when tally first saw it)"),
        "{}",
        judged.findings[0].problem
    );
    assert_eq!((judged.unscanned, judged.held_back), (2, 1));
    let held: Vec<(&str, bool, u64)> =
        judged.watched.iter().map(|u| (u.index.as_str(), u.held_back, u.watched_seconds.as_secs())).collect();
    assert_eq!(held, [("app.brand_new_idx", true, 180), ("app.older_idx", false, 2 * 86_400)]);
    // The default threshold holds both back; zero judges both.
    assert_eq!(audit(&[brand_new.clone(), older.clone()], &counted_for(30), DEFAULT_MIN_AGE).findings, []);
    assert_eq!(audit(&[brand_new, older], &counted_for(30), Duration::ZERO).findings.len(), 2);
}

#[test]
fn an_index_tally_has_no_record_of_is_never_advised_away_unless_asked_to_judge_now() {
    let unseen = AuditIndex { scans: 0, sighting: None, ..index("unseen_idx", &["a"]) };
    let installed = AuditIndex { scans: 0, ..index("installed_idx", &["b"]) };
    let judged = audit(&[unseen.clone(), installed], &counted_for(30), Duration::from_secs(1));
    assert_eq!(kinds(&judged.findings), [(AuditKind::UnusedIndex, "app.installed_idx".into())]);
    // Present at install: judged over the whole window, as before sightings existed.
    assert!(judged.findings[0].problem.contains(&counted_for(30).since_text()), "{}", judged.findings[0].problem);
    assert_eq!(judged.watched[0].first_seen, None);
    let now = audit(&[unseen], &counted_for(30), Duration::ZERO);
    assert!(
        now.findings[0].problem.contains("tally has no record of when it first saw it"),
        "{}",
        now.findings[0].problem
    );
}
