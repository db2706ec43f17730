//! The query doctor on real tables: each warning sign is provoked, the fix
//! tally suggests is applied as printed, and the finding disappears; what
//! `tally explain` prints and exits with. The index audit (`tally doctor`)
//! is in `audit`, how long it watches an index before calling it unused in
//! `sightings`, when to point at an aggregate in `aggregates`.

mod aggregates;
mod audit;
mod sightings;
mod verified;
mod workload;

use sqlx::{AssertSqlSafe, PgPool};
use tally::doctor::{self, ExplainOptions, Finding, Kind, Report};

use crate::harness::{TestDb, config, create_months, refresh_all, tally};

/// marketing.clicks: 50,000 clicks (a fifth from each of five countries, one
/// per minute before 2026-11-01, 1,000 channels, 25 not 'done', 10 with the
/// rare campaign); marketing.corr: 100,000 rows where a = b (correlated).
async fn clicks(db: &TestDb) {
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS marketing;
         CREATE TABLE marketing.clicks (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, country text, clicked_at timestamptz,
             channel text, status text, payload jsonb);
         INSERT INTO marketing.clicks (country, clicked_at, channel, status, payload)
         SELECT (ARRAY['US', 'DE', 'FR', 'GB', 'IS'])[1 + g % 5], '2026-11-01'::timestamptz - g * interval '1 minute',
                'ch' || (g % 1000), CASE WHEN g % 2000 = 0 THEN 'new' ELSE 'done' END,
                jsonb_build_object('campaign', CASE WHEN g % 5000 = 0 THEN 'rare' ELSE 'c' || (g % 50) END)
         FROM generate_series(1, 50000) AS g;
         CREATE TABLE marketing.corr (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, b int);
         INSERT INTO marketing.corr (a, b) SELECT g % 100, g % 100 FROM generate_series(1, 100000) AS g;
         ANALYZE marketing.clicks; ANALYZE marketing.corr;",
    )
    .execute(&db.pool)
    .await
    .expect("test tables");
}

pub(super) async fn explain(pool: &PgPool, sql: &str, settings: &[(&str, &str)]) -> Report {
    let options = ExplainOptions {
        settings: settings.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        ..ExplainOptions::default()
    };
    doctor::explain(pool, sql, &options).await.unwrap_or_else(|e| panic!("explain {sql}: {e}"))
}

pub(super) fn find(report: &Report, kind: Kind) -> Option<&Finding> {
    report.findings.iter().find(|f| f.kind == kind)
}

pub(super) fn expect(report: &Report, kind: Kind) -> Finding {
    find(report, kind).cloned().unwrap_or_else(|| panic!("a {kind:?} finding in {:#?}", report.findings))
}

/// Runs the statements a finding suggests, exactly as printed.
async fn apply(pool: &PgPool, finding: &Finding) {
    assert!(!finding.sql.is_empty(), "a fix to apply: {finding:#?}");
    for statement in &finding.sql {
        sqlx::raw_sql(AssertSqlSafe(statement.clone()))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

fn plan_text(report: &Report) -> String {
    report.plan.to_string()
}

#[tokio::test]
async fn a_selective_seq_scan_is_fixed_by_the_suggested_composite_index() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    let query = "SELECT * FROM marketing.clicks WHERE country = 'IS' AND clicked_at >= '2026-10-29' \
                 ORDER BY clicked_at DESC LIMIT 20";
    let before = explain(&db.pool, query, &[]).await;
    let finding = expect(&before, Kind::SeqScan);
    assert_eq!(finding.relation.as_deref(), Some("marketing.clicks"));
    assert!(finding.actual_rows.is_some() && finding.buffers.is_some() && finding.time_ms.is_some(), "{finding:#?}");
    assert!(finding.problem.starts_with("Seq Scan reads 50,000 rows of marketing.clicks"), "{}", finding.problem);
    // The fix is the best index hypopg verified (docs/query-doctor.md).
    let best = before.suggestions.first().unwrap_or_else(|| panic!("{before:#?}"));
    assert_eq!(finding.sql, best.sql);
    assert!(finding.sql[0].starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_"), "{:?}", finding.sql);
    apply(&db.pool, &finding).await;
    let after = explain(&db.pool, query, &[]).await;
    assert!(after.findings.is_empty(), "{:#?}", after.findings);
    let name = finding.sql[0].split_whitespace().nth(6).unwrap();
    assert!(plan_text(&after).contains(name), "the new index {name} is used");
}

#[tokio::test]
async fn containment_constant_predicates_and_join_columns_get_their_index_shapes() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    // GIN jsonb_path_ops for @>, a partial index for a constant predicate.
    for (query, shape) in [
        (
            "SELECT id FROM marketing.clicks WHERE payload @> '{\"campaign\": \"rare\"}'",
            "USING gin (payload jsonb_path_ops)",
        ),
        ("SELECT id, status FROM marketing.clicks WHERE status <> 'done'", "(status) WHERE status <> 'done'::text"),
    ] {
        let finding = expect(&explain(&db.pool, query, &[]).await, Kind::SeqScan);
        assert!(finding.sql.len() == 1 && finding.sql[0].contains(shape), "{query}: {:?}", finding.sql);
        apply(&db.pool, &finding).await;
        let after = explain(&db.pool, query, &[]).await;
        assert!(find(&after, Kind::SeqScan).is_none(), "{query}: {:#?}", after.findings);
    }
    // A nested loop rescanning clicks for every outer row (hash and merge
    // joins off, as the planner would choose on a misestimate).
    let join = "SELECT count(*) FROM (SELECT a FROM marketing.corr LIMIT 200) AS c \
                JOIN marketing.clicks AS k ON k.channel = 'ch' || c.a";
    let no_hash = [("enable_hashjoin", "off"), ("enable_mergejoin", "off")];
    let finding = expect(&explain(&db.pool, join, &no_hash).await, Kind::NestedLoop);
    assert!(finding.problem.starts_with("Nested Loop compares 10,000,000 row pairs"), "{}", finding.problem);
    assert_eq!(
        finding.sql,
        ["CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_channel_idx ON marketing.clicks (channel);"]
    );
    apply(&db.pool, &finding).await;
    let after = explain(&db.pool, join, &no_hash).await;
    assert!(find(&after, Kind::NestedLoop).is_none(), "{:#?}", after.findings);
    assert!(plan_text(&after).contains("clicks_channel_idx"));
}

#[tokio::test]
async fn correlated_columns_are_fixed_by_the_suggested_extended_statistics() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    let query = "SELECT count(*) FROM marketing.corr WHERE a = 7 AND b = 7";
    let finding = expect(&explain(&db.pool, query, &[]).await, Kind::Misestimate);
    assert_eq!(finding.actual_rows, Some(1000.0));
    assert!(finding.estimated_rows.unwrap() < 100.0, "{finding:#?}");
    assert!(
        finding.sql[0].starts_with("CREATE STATISTICS IF NOT EXISTS marketing.corr_a_b_stats"),
        "{:?}",
        finding.sql
    );
    apply(&db.pool, &finding).await;
    let after = explain(&db.pool, query, &[]).await;
    assert!(find(&after, Kind::Misestimate).is_none(), "{:#?}", after.findings);
}

#[tokio::test]
async fn a_sort_spilling_to_disk_is_fixed_by_the_suggested_work_mem() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    let query = "SELECT id FROM marketing.clicks ORDER BY payload::text";
    let report = explain(&db.pool, query, &[("work_mem", "64kB")]).await;
    let finding = expect(&report, Kind::Spill);
    assert!(finding.buffers.as_ref().is_some_and(|b| b.temp_written > 0), "{finding:#?}");
    let suggested = finding.sql[0].strip_prefix("SET work_mem = '").and_then(|s| s.strip_suffix("';")).unwrap();
    let after = explain(&db.pool, query, &[("work_mem", suggested)]).await;
    assert!(find(&after, Kind::Spill).is_none(), "work_mem {suggested}: {:#?}", after.findings);
    // The setting lasted for the explained statement only.
    let now: String = sqlx::query_scalar("SHOW work_mem").fetch_one(&db.pool).await.unwrap();
    assert_ne!(now, "64kB");
}

#[tokio::test]
async fn events_queries_learn_to_prune_partitions_and_to_read_the_aggregates() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    sqlx::query(
        "INSERT INTO marketing.events (event, user_id, utm_source, utm_campaign, occurred_at)
         SELECT (ARRAY['page_view', 'signup', 'purchase'])[1 + g % 3], 'u' || (g % 500),
                (ARRAY['google', 'newsletter', 'linkedin'])[1 + g % 3], 'spring', '2026-09-01'::timestamptz + g * interval '4 minutes'
         FROM generate_series(1, 30000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE marketing.events").execute(&db.pool).await.unwrap();

    let by_cast = "SELECT count(*) FROM marketing.events WHERE occurred_at::date = '2026-10-20'";
    let finding = expect(&explain(&db.pool, by_cast, &[]).await, Kind::PartitionsNotPruned);
    assert_eq!(finding.relation.as_deref(), Some("marketing.events"));
    let rewrite = finding.fix.rsplit_once("compare the column itself: ").map(|(_, r)| r.to_string()).unwrap();
    assert_eq!(rewrite, "occurred_at >= '2026-10-20' AND occurred_at < '2026-10-21'");
    let rewritten = format!("SELECT count(*) FROM marketing.events WHERE {rewrite}");
    let after = explain(&db.pool, &rewritten, &[]).await;
    assert!(find(&after, Kind::PartitionsNotPruned).is_none(), "{:#?}", after.findings);
    let pool = &db.pool;
    let count =
        |sql: String| async move { sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).fetch_one(pool).await.unwrap() };
    assert_eq!(count(by_cast.to_string()).await, count(rewritten).await, "the rewrite counts the same rows");

    // Counting raw events by source, where tally keeps daily_campaign_metrics.
    refresh_all(&db.pool, &config("")).await;
    let raw = "SELECT utm_source, count(*) FROM marketing.events WHERE occurred_at >= '2026-10-01' \
               GROUP BY utm_source ORDER BY 1";
    let finding = expect(&explain(&db.pool, raw, &[]).await, Kind::UseAggregate);
    assert!(finding.fix.starts_with("read reporting.daily_campaign_metrics instead"), "{}", finding.fix);
    let rollup = "SELECT utm_source, sum(events)::int8 FROM reporting.daily_campaign_metrics WHERE day >= '2026-10-01' \
                  GROUP BY utm_source ORDER BY 1";
    let after = explain(&db.pool, rollup, &[]).await;
    assert!(find(&after, Kind::UseAggregate).is_none(), "{:#?}", after.findings);
    let rows =
        |sql: &'static str| async move { sqlx::query_as::<_, (String, i64)>(sql).fetch_all(pool).await.unwrap() };
    assert_eq!(rows(raw).await, rows(rollup).await, "the aggregate answers the same");
}

#[tokio::test]
async fn statements_are_measured_and_never_kept() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    let out = tally(&["explain", "--json", "DELETE FROM marketing.clicks WHERE status <> 'done'"])
        .database(&db.url)
        .output()
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["analyzed"], true);
    assert_eq!(json["plan"]["Operation"], "Delete");
    assert!(json["execution_time_ms"].as_f64().is_some());
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "seq_scan");
    assert_eq!(finding["node"], "Seq Scan on marketing.clicks");
    assert_eq!(finding["actual_rows"].as_f64(), Some(25.0));
    assert!(finding["buffers"]["shared_hit"].as_u64().is_some(), "{finding}");
    assert!(finding["sql"][0].as_str().unwrap().starts_with("CREATE INDEX CONCURRENTLY"));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.clicks").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 50_000, "the DELETE was rolled back");

    // Plan only: nothing runs, estimates only.
    let out = tally(&["explain", "--json", "--no-analyze", "UPDATE marketing.clicks SET status = 'x'"])
        .database(&db.url)
        .output()
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((json["analyzed"].as_bool(), json["execution_time_ms"].is_null()), (Some(false), true));
    let changed: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.clicks WHERE status = 'x'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(changed, 0);
}

#[tokio::test]
async fn human_output_shows_numbers_problem_fix_and_sql() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    let out = tally(&["explain", "--file", "-"]).database(&db.url);
    let mut command = out.command;
    command.stdin(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"SELECT id FROM marketing.clicks\n WHERE status <> 'done';\n").await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("Plan: Seq Scan on marketing.clicks"), "{stdout}");
    for expected in [
        "1 warning sign:",
        "1. [seq_scan] Seq Scan on marketing.clicks",
        "rows estimated",
        "buffers shared hit",
        "Problem: Seq Scan reads 50,000 rows of marketing.clicks to return 25 (0.05%)",
        "Fix: add a partial B-tree index",
        "     CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_status_28f681_partial_idx ON marketing.clicks (status) WHERE \
         status <> 'done'::text;",
    ] {
        assert!(stdout.contains(expected), "`{expected}` in:\n{stdout}");
    }
}

#[tokio::test]
async fn bad_statements_get_clear_errors_and_exit_codes() {
    let db = TestDb::empty().await;
    clicks(&db).await;
    for (args, code, message) in [
        (vec!["explain", "SELECT 1; DELETE FROM marketing.clicks"], 2, "tally explain takes one statement"),
        (vec!["explain", "SELEC 1"], 2, "syntax error at or near \"SELEC\""),
        (vec!["explain", "SELECT * FROM marketing.clicks WHERE id = $1"], 2, "put constants where the parameters are"),
        (vec!["explain", "SELECT * FROM nowhere"], 2, "relation \"nowhere\" does not exist"),
        (vec!["explain", "--set", "work_mem", "SELECT 1"], 2, "--set takes NAME=VALUE"),
        (vec!["explain", "--set", "work_mem=lots", "SELECT 1"], 2, "invalid value for parameter \"work_mem\""),
        (vec!["explain", "--timeout", "1s", "SELECT pg_sleep(5)"], 1, "ran longer than the 1s timeout (--timeout)"),
        (
            vec!["explain", "--set", "statement_timeout=500ms", "SELECT pg_sleep(5)"],
            1,
            "ran longer than the statement_timeout 500ms given with --set",
        ),
        (vec!["explain"], 2, "tally explain needs a statement"),
        (vec!["explain", ";"], 2, "no statement to explain"),
    ] {
        let out = tally(&args).database(&db.url).output().await;
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: `{message}` in {}", out.stderr);
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.clicks").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 50_000);
}

#[tokio::test]
async fn a_sub_partitioned_table_gets_an_index_per_level_that_ends_valid() {
    let db = TestDb::empty().await;
    sqlx::raw_sql(
        "CREATE SCHEMA marketing;
         CREATE TABLE marketing.hits (id bigint, region text, at timestamptz, page text) PARTITION BY LIST (region);
         CREATE TABLE marketing.hits_eu PARTITION OF marketing.hits FOR VALUES IN ('eu') PARTITION BY RANGE (at);
         CREATE TABLE marketing.hits_eu_2026 PARTITION OF marketing.hits_eu
             FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE marketing.hits_us PARTITION OF marketing.hits FOR VALUES IN ('us');
         INSERT INTO marketing.hits
         SELECT g, (ARRAY['eu', 'us'])[1 + g % 2], '2026-01-01'::timestamptz + g * interval '5 minutes', 'p' || g % 5000
         FROM generate_series(1, 60000) AS g;
         ANALYZE marketing.hits;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let query = "SELECT id FROM marketing.hits WHERE page = 'p42'";
    let finding = expect(&explain(&db.pool, query, &[]).await, Kind::SeqScan);
    assert_eq!(finding.relation.as_deref(), Some("marketing.hits"));
    apply(&db.pool, &finding).await;
    let valid: bool =
        sqlx::query_scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'marketing.hits_page_idx'::regclass")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(valid, "every level attached: {:?}", finding.sql);
    let after = explain(&db.pool, query, &[]).await;
    assert!(find(&after, Kind::SeqScan).is_none(), "{:#?}", after.findings);
}
