//! The index audit (`tally doctor`, `tally explain --audit`) on real
//! tables: each kind of finding provoked and its fix applied; statistics too
//! young to call an index unused; tally's own indexes never advised away.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use tally::doctor;
use tally::doctor::audit::{AuditKind, AuditOptions, own};

use crate::harness::{TestDb, create_months, index_state, tally, wait_until};

/// Reads `marketing.audited` until the statistics show the scans.
pub(super) async fn read_and_flush(db: &TestDb, queries: &[&str]) {
    let mut conn = db.pool.acquire().await.unwrap();
    for query in queries {
        sqlx::raw_sql(AssertSqlSafe(query.to_string())).execute(&mut *conn).await.unwrap();
    }
    sqlx::query("SELECT pg_stat_force_next_flush()").execute(&mut *conn).await.unwrap();
    drop(conn);
    let flushed = wait_until(Duration::from_secs(10), || async {
        let reads: Option<i64> = sqlx::query_scalar(
            "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'audited'",
        )
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        reads.unwrap_or(0) > 0
    })
    .await;
    assert!(flushed, "the scans reach pg_stat_user_tables");
}

#[tokio::test]
async fn the_audit_finds_duplicate_redundant_unused_and_invalid_indexes_and_its_fixes_clear_them() {
    let db = TestDb::migrated().await;
    sqlx::raw_sql(
        "CREATE TABLE marketing.audited (id bigint PRIMARY KEY, email text UNIQUE, source text, campaign text, note text);
         INSERT INTO marketing.audited SELECT g, 'u' || g || '@example.com', 's' || g % 3, 'c' || g % 7, 'n' || g % 2
         FROM generate_series(1, 2000) AS g;
         CREATE INDEX audited_email_idx ON marketing.audited (email);
         CREATE INDEX audited_source_idx ON marketing.audited (source);
         CREATE INDEX audited_source_campaign_idx ON marketing.audited (source, campaign);
         CREATE INDEX audited_campaign_idx ON marketing.audited (campaign);
         -- Logical replication identifies rows by this copy of the key: it must stay.
         CREATE UNIQUE INDEX audited_id_copy ON marketing.audited (id);
         ALTER TABLE marketing.audited REPLICA IDENTITY USING INDEX audited_id_copy;
         ANALYZE marketing.audited;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // A failed concurrent build (duplicates under a UNIQUE index) leaves an INVALID index.
    let failed = sqlx::query("CREATE UNIQUE INDEX CONCURRENTLY audited_note_key ON marketing.audited (note)")
        .execute(&db.pool)
        .await;
    assert!(failed.is_err());
    // An index ON ONLY the partitioned parent, never attached: invalid too.
    create_months(&db.pool).await;
    sqlx::query("CREATE INDEX events_utm_medium_idx ON ONLY marketing.events (utm_medium)")
        .execute(&db.pool)
        .await
        .unwrap();
    // The workload reads by source and campaign; nothing ever reads by note.
    read_and_flush(
        &db,
        &[
            "SET enable_seqscan = off",
            "SELECT count(*) FROM marketing.audited WHERE source = 's1' AND campaign = 'c2'",
            "SELECT count(*) FROM marketing.audited WHERE campaign = 'c3'",
            "SELECT count(*) FROM marketing.audited WHERE email = 'u5@example.com'",
            "RESET enable_seqscan",
        ],
    )
    .await;

    let out = tally(&["doctor", "--json"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["index"].as_str().unwrap().to_string()))
        .collect();
    let has = |kind: &str, index: &str| found.contains(&(kind.to_string(), index.to_string()));
    assert!(has("duplicate_index", "marketing.audited_email_idx"), "{found:?}");
    assert!(has("redundant_index", "marketing.audited_source_idx"), "{found:?}");
    assert!(has("invalid_index", "marketing.audited_note_key"), "{found:?}");
    assert!(has("invalid_index", "marketing.events_utm_medium_idx"), "{found:?}");
    // Used, or backing a constraint: never suggested for dropping.
    for kept in
        ["audited_source_campaign_idx", "audited_campaign_idx", "audited_email_key", "audited_pkey", "audited_id_copy"]
    {
        assert!(!found.iter().any(|(_, i)| i.ends_with(kept)), "{kept}: {found:?}");
    }
    let email = report["findings"].as_array().unwrap().iter().find(|f| f["index"] == "marketing.audited_email_idx");
    assert!(email.unwrap()["problem"].as_str().unwrap().contains("backs constraint audited_email_key"));

    // The suggested statements fix every finding but the failed UNIQUE build,
    // whose rebuild fails on the duplicates until the data is fixed.
    for finding in report["findings"].as_array().unwrap() {
        let index = finding["index"].as_str().unwrap();
        if index == "marketing.audited_note_key" {
            sqlx::query("UPDATE marketing.audited SET note = note || id").execute(&db.pool).await.unwrap();
        }
        for statement in finding["sql"].as_array().unwrap() {
            sqlx::raw_sql(AssertSqlSafe(statement.as_str().unwrap().to_string()))
                .execute(&db.pool)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }
    let report = doctor::audit::run(&db.pool, &AuditOptions::default()).await.unwrap();
    let left: Vec<String> = report
        .findings
        .into_iter()
        .filter(|f| f.kind != AuditKind::UnusedIndex)
        .map(|f| format!("{:?} {}", f.kind, f.index))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let valid: Vec<bool> = sqlx::query_scalar(
        "SELECT indisvalid FROM pg_index WHERE indexrelid IN
         ('marketing.audited_note_key'::regclass, 'marketing.events_utm_medium_idx'::regclass)",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(valid, [true, true]);
}

#[tokio::test]
async fn an_index_no_query_uses_is_reported_unused_with_its_size() {
    let db = TestDb::empty().await;
    sqlx::raw_sql(
        "CREATE SCHEMA marketing;
         CREATE TABLE marketing.audited (id bigint PRIMARY KEY, note text);
         INSERT INTO marketing.audited SELECT g, 'n' || g FROM generate_series(1, 5000) AS g;
         CREATE INDEX audited_note_idx ON marketing.audited (note);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // Never read yet: nothing to judge by, however old the statistics.
    let judge_now = AuditOptions { min_stats_age: Duration::ZERO };
    assert_eq!(doctor::audit::run(&db.pool, &judge_now).await.unwrap().findings, []);
    read_and_flush(&db, &["SELECT count(*) FROM marketing.audited WHERE id = 7"]).await;
    // The statistics of this new database are seconds old: judged only with a zero threshold.
    let out = tally(&["doctor", "--min-stats-age", "0s"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("1. [unused_index] marketing.audited_note_idx"), "{}", out.stdout);
    // The header and the finding date the window with the same words (the
    // finding adds that tally, never installed here, has no record of the index).
    let since = out.stdout.split_once("index usage counted since ").and_then(|(_, r)| r.split_once(", ")).unwrap().0;
    let expected = format!("no index scan since {since}, or its creation if later (tally has no record of");
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
    assert!(out.stdout.contains("DROP INDEX CONCURRENTLY IF EXISTS marketing.audited_note_idx;"), "{}", out.stdout);
    let via_explain = tally(&["explain", "--audit", "--min-stats-age", "0s"]).database(&db.url).output().await;
    let findings = |stdout: &str| stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(findings(&via_explain.stdout), findings(&out.stdout));
}

/// The `DROP` statements of a `tally doctor` output that name one of tally's
/// own indexes.
fn drops_of_tally_indexes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.contains("DROP"))
        .filter(|line| own::tally_indexes().iter().any(|i| line.contains(&i.index)))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn young_statistics_hold_unused_advice_back_and_tally_s_own_indexes_are_never_advised_away() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    sqlx::raw_sql(
        "INSERT INTO marketing.events (event, user_id, utm_source, occurred_at, properties)
         SELECT 'page_view', 'u' || (g % 50), 'google', '2026-10-01'::timestamptz + g * interval '1 hour',
                jsonb_build_object('url', '/p' || (g % 7))
         FROM generate_series(1, 500) AS g;
         INSERT INTO marketing.leads (email, source, campaign, user_id)
         SELECT 'l' || g || '@example.com', 'google', 'spring', 'u' || g FROM generate_series(1, 20) AS g;
         INSERT INTO marketing.conversions (lead_id, kind, revenue) SELECT id, 'signup', 0 FROM marketing.leads;
         CREATE TABLE marketing.audited (id bigint PRIMARY KEY, note text);
         INSERT INTO marketing.audited SELECT g, 'n' || g FROM generate_series(1, 2000) AS g;
         CREATE INDEX audited_note_idx ON marketing.audited (note);
         ANALYZE;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // Dashboards read the tables; nothing reads by note, and nothing yet by
    // what most of tally's indexes serve (deleting a lead, properties @>, ...).
    read_and_flush(
        &db,
        &[
            "SELECT count(*) FROM marketing.events WHERE utm_source = 'google'",
            "SELECT count(*) FROM marketing.leads",
            "SELECT count(*) FROM marketing.conversions",
            "SELECT count(*) FROM marketing.audited WHERE id = 7",
        ],
    )
    .await;

    // Seconds-old statistics: no index is called unused, and the output says why and until when.
    let out = tally(&["doctor"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(drops_of_tally_indexes(&out.stdout), Vec::<String>::new(), "{}", out.stdout);
    assert!(!out.stdout.contains("DROP"), "{}", out.stdout);
    for expected in [
        "Unused indexes are not judged yet: index usage has been counted for ",
        "less than --min-stats-age (7 days)",
        "Indexes with no index scan in that time: 1 of yours, which would otherwise be reported unused; ",
        " of tally's own, which are never advised for dropping.",
        "Run `tally doctor` again after ",
        "No duplicate, redundant or invalid indexes.",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }
    let out = tally(&["doctor", "--json"]).database(&db.url).output().await;
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["unused_held_back"], true, "{report:#}");
    assert_eq!(report["min_stats_age_seconds"], 7 * 86_400);
    assert_eq!(report["stats_since_source"], "database_created");
    assert!(report["stats_age_seconds"].as_u64().is_some_and(|age| age < 3_600), "{report:#}");
    assert_eq!(report["unscanned_indexes"], 1);
    assert!(report["unscanned_tally_indexes"].as_u64().is_some_and(|n| n >= 3), "{report:#}");
    assert_eq!(report["findings"], serde_json::json!([]));

    // Judged now: the user's index is advised for dropping, tally's get what they serve.
    let out = tally(&["doctor", "--min-stats-age", "0s"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("DROP INDEX CONCURRENTLY IF EXISTS marketing.audited_note_idx;"), "{}", out.stdout);
    assert_eq!(drops_of_tally_indexes(&out.stdout), Vec::<String>::new(), "{}", out.stdout);
    assert!(out.stdout.contains("Notes on tally's own indexes (informational: nothing to drop):"), "{}", out.stdout);
    let out = tally(&["doctor", "--json", "--min-stats-age", "0s"]).database(&db.url).output().await;
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        (report["unused_held_back"].as_bool(), report["min_stats_age_seconds"].as_u64()),
        (Some(false), Some(0))
    );
    let findings = report["findings"].as_array().unwrap();
    let about = |index: &str| findings.iter().find(|f| f["index"] == index).cloned();
    let user = about("marketing.audited_note_idx").expect("the user's unused index");
    assert_eq!(user["kind"], "unused_index");
    for index in own::tally_indexes() {
        if let Some(finding) = about(&index.index) {
            assert_eq!(
                (&finding["kind"], &finding["sql"]),
                (&"tally_index".into(), &serde_json::json!([])),
                "{finding:#}"
            );
        }
    }
    // The foreign-key index no lead deletion has used yet, and the GIN no containment query has.
    for index in ["marketing.conversions_lead_id_idx", "marketing.events_properties_idx"] {
        let note = about(index).unwrap_or_else(|| panic!("a note on {index}: {report:#}"));
        assert!(note["fix"].as_str().unwrap().starts_with("keep it: tally's migration 000"), "{note:#}");
    }
}

#[tokio::test]
async fn an_invalid_tally_index_is_repaired_by_tally_migrate_as_the_audit_says() {
    let db = TestDb::migrated().await;
    // Rebuild migration 0008's index the way an interrupted migration does:
    // CONCURRENTLY, giving up behind a report's snapshot (lock_timeout).
    sqlx::query("DROP INDEX marketing.leads_created_at_idx").execute(&db.pool).await.unwrap();
    let report_pool = db.another_pool().await;
    let mut report = report_pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *report).await.unwrap();
    sqlx::query("SELECT count(*) FROM marketing.leads").execute(&mut *report).await.unwrap();
    let mut builder = db.pool.acquire().await.unwrap().detach();
    sqlx::query("SET lock_timeout = '300ms'").execute(&mut builder).await.unwrap();
    let build = sqlx::query("CREATE INDEX CONCURRENTLY leads_created_at_idx ON marketing.leads (created_at)")
        .execute(&mut builder)
        .await;
    assert!(build.is_err(), "the build waits for the report and gives up");
    report.rollback().await.unwrap();

    let out = tally(&["doctor", "--json"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(
        (&findings[0]["kind"], &findings[0]["index"]),
        (&"invalid_index".into(), &"marketing.leads_created_at_idx".into())
    );
    assert!(findings[0]["fix"].as_str().unwrap().starts_with("run `tally migrate`"), "{json:#}");
    assert_eq!(findings[0]["sql"], serde_json::json!([]), "never a DROP of tally's index");

    // Doing what it says repairs it.
    let migrate = tally(&["migrate"]).database(&db.url).output().await;
    assert_eq!(migrate.code, Some(0), "{migrate:?}");
    let out = tally(&["doctor", "--json"]).database(&db.url).output().await;
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["findings"], serde_json::json!([]), "{json:#}");
    assert_eq!(index_state(&db.pool).await, Some(true));
}
