//! Verified index advice (SPEC §8): candidates are created as hypothetical
//! indexes (hypopg), the statement is planned again, and only those that cut
//! its estimated cost by at least half are suggested, best first; GIN
//! indexes, which hypopg cannot simulate, are marked unverified; without
//! hypopg the findings' suggestions stand, marked unverified, with the way
//! to install it.

use sqlx::{AssertSqlSafe, PgPool};
use tally::doctor::{self, ExplainOptions, Kind, Report};

use super::{explain, find};
use crate::harness::{TestDb, tally};

/// 300,000 leads, scores 0..999 spread evenly, one a minute back from
/// 2026-11-01: `score = 997` matches 0.1% of them, spread over all time.
async fn leads(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO marketing.leads (email, score, status, created_at)
         SELECT 'lead' || g || '@example.com', (g::bigint * 7919 % 1000)::int, 'new', '2026-11-01'::timestamptz - g * interval '1 minute'
         FROM generate_series(1, 300000) AS g;
         ANALYZE marketing.leads;",
    )
    .execute(pool)
    .await
    .unwrap();
}

const LATEST_OF_A_SCORE: &str = "SELECT * FROM marketing.leads WHERE score = 997 ORDER BY created_at DESC LIMIT 20";

#[tokio::test]
async fn the_composite_in_the_query_order_is_verified_and_applying_it_fixes_the_statement() {
    let db = TestDb::migrated().await;
    leads(&db.pool).await;
    let before = explain(&db.pool, LATEST_OF_A_SCORE, &[]).await;
    assert_eq!(
        before.verification.method, "hypopg",
        "the test server needs postgresql-15-hypopg (.ci/run installs it)"
    );
    let finding = find(&before, Kind::FilterAfterIndex).unwrap_or_else(|| panic!("{:#?}", before.findings)).clone();
    assert!(finding.node.contains("using leads_created_at_idx on marketing.leads"), "{}", finding.node);
    let best = before.suggestions.first().unwrap_or_else(|| panic!("a suggestion in {before:#?}"));
    assert!(best.verified);
    assert_eq!(best.index, "marketing.leads (score, created_at DESC)", "{:#?}", before.suggestions);
    let (cost_before, cost_after) = (best.cost_before.unwrap(), best.cost_after.unwrap());
    assert!(cost_after * 2.0 <= cost_before, "{cost_before} → {cost_after}");
    assert_eq!(best.node_before.as_deref(), Some(finding.node.as_str()));
    assert!(best.node_after.as_deref().unwrap_or_default().contains("using the new index on marketing.leads"));
    // (score) alone cuts the cost by about a third: not enough, not printed.
    assert!(!before.suggestions.iter().any(|s| s.index == "marketing.leads (score)"), "{:#?}", before.suggestions);
    assert_eq!(finding.sql, best.sql, "the finding's fix is the verified index");

    // ORDER BY an output alias: the candidate (score, s DESC) names no column
    // of leads; hypopg refuses it, and the others are still tried.
    let aliased = explain(
        &db.pool,
        "SELECT created_at AS s, email FROM marketing.leads WHERE score = 997 ORDER BY s DESC LIMIT 20",
        &[],
    )
    .await;
    assert_eq!(aliased.verification.method, "hypopg");
    assert!(aliased.suggestions.iter().any(|s| s.verified), "{:#?}", aliased.suggestions);

    for statement in &best.sql {
        sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(&db.pool).await.unwrap();
    }
    let after = explain(&db.pool, LATEST_OF_A_SCORE, &[]).await;
    assert!(find(&after, Kind::FilterAfterIndex).is_none(), "{:#?}", after.findings);
    let (was, is) = (before.execution_time_ms.unwrap(), after.execution_time_ms.unwrap());
    assert!(is * 5.0 < was, "the statement took {was:.1} ms, now {is:.1} ms");
    assert!(after.suggestions.iter().all(|s| !s.verified), "nothing left to suggest: {:#?}", after.suggestions);
}

#[tokio::test]
async fn a_higher_bar_gin_and_the_text_output() {
    let db = TestDb::migrated().await;
    leads(&db.pool).await;
    // At 99% the composite (a 94% cut) no longer qualifies, and the finding says so.
    let options = ExplainOptions { min_cost_cut: 0.99, ..ExplainOptions::default() };
    let strict: Report = doctor::explain(&db.pool, LATEST_OF_A_SCORE, &options).await.unwrap();
    assert!(strict.suggestions.iter().all(|s| !s.verified), "{:#?}", strict.suggestions);
    let finding = find(&strict, Kind::FilterAfterIndex).unwrap();
    assert!(finding.sql.is_empty() && finding.fix.contains("cut the estimated cost by at least 99%"), "{finding:#?}");

    sqlx::raw_sql(
        "CREATE TABLE marketing.docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb);
         INSERT INTO marketing.docs (payload)
         SELECT jsonb_build_object('plan', CASE WHEN g % 1000 = 0 THEN 'pro' ELSE 'free' END, 'n', g)
         FROM generate_series(1, 50000) AS g;
         ANALYZE marketing.docs;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let containment = "SELECT id FROM marketing.docs WHERE payload @> '{\"plan\": \"pro\"}'";
    let report = explain(&db.pool, containment, &[]).await;
    let gin =
        report.suggestions.iter().find(|s| s.index.contains("USING gin")).unwrap_or_else(|| panic!("{report:#?}"));
    assert!(!gin.verified && gin.note.as_deref() == Some("hypopg cannot simulate gin indexes: not verified"));
    assert!(gin.sql.iter().any(|s| s.contains("USING gin (payload jsonb_path_ops)")), "{:?}", gin.sql);
    let finding = find(&report, Kind::SeqScan).unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert!(finding.fix.ends_with("(not verified: hypopg cannot simulate GIN indexes)"), "{}", finding.fix);

    let out = tally(&["explain", LATEST_OF_A_SCORE]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "Suggested indexes, verified with hypopg (",
        "1. marketing.leads (score, created_at DESC)",
        "   estimated cost: ",
        "using leads_created_at_idx on marketing.leads → Index Scan using the new index on marketing.leads",
        "   CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_score_created_at_idx ON marketing.leads (score, created_at DESC);",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }
    let json = tally(&["explain", "--json", "--no-analyze", LATEST_OF_A_SCORE]).database(&db.url).output().await;
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["verification"]["method"], "hypopg");
    assert_eq!(value["suggestions"][0]["index"], "marketing.leads (score, created_at DESC)");
    assert!(value["suggestions"][0]["cost_after"].as_f64().unwrap() > 0.0);
    for bad in ["0", "100%", "half", "-5%"] {
        let flag = format!("--min-cost-cut={bad}");
        let out = tally(&["explain", &flag, "SELECT 1"]).database(&db.url).output().await;
        assert_eq!(out.code, Some(2), "{bad}: {out:?}");
        assert!(out.stderr.contains("--min-cost-cut"), "{bad}: {}", out.stderr);
    }
}

#[tokio::test]
async fn without_hypopg_the_suggestions_are_marked_unverified_with_how_to_install_it() {
    let db = TestDb::migrated().await;
    leads(&db.pool).await;
    // A role that may not create the (untrusted) extension, in a database without it.
    let role = format!("{}_plain", db.name);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOSUPERUSER;
         GRANT CONNECT ON DATABASE {} TO {role}; GRANT USAGE ON SCHEMA marketing TO {role};
         GRANT SELECT ON marketing.leads TO {role};",
        db.name
    )))
    .execute(&db.pool)
    .await
    .unwrap();
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_username(&role).unwrap();
    let url = url.to_string();
    let plain = PgPool::connect(&url).await.unwrap();
    let report = explain(&plain, LATEST_OF_A_SCORE, &[]).await;
    assert_eq!(report.verification.method, "none");
    assert!(report.verification.note.as_deref().unwrap_or_default().contains("apt install postgresql-15-hypopg"));
    assert!(report.suggestions.is_empty());
    let finding = find(&report, Kind::FilterAfterIndex).unwrap();
    assert!(finding.sql.iter().any(|s| s.starts_with("CREATE INDEX")), "as before hypopg: {finding:#?}");
    plain.close().await;
    let out = tally(&["explain", LATEST_OF_A_SCORE]).env("DATABASE_URL", &url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Note: index suggestions below are not verified: to verify them, install hypopg"),
        "{}",
        out.stdout
    );
    sqlx::raw_sql(AssertSqlSafe(format!(
        "REVOKE ALL ON marketing.leads FROM {role}; REVOKE USAGE ON SCHEMA marketing FROM {role};
         REVOKE CONNECT ON DATABASE {} FROM {role}; DROP ROLE {role}",
        db.name
    )))
    .execute(&db.pool)
    .await
    .unwrap();
}
