//! Every SQL query of the shipped dashboards, expanded as Grafana expands
//! it, runs as `tally_reader` on a database the demo generator filled,
//! returns rows, and reads no `marketing` table (EXPLAIN says so).

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::Value;
use sqlx::PgPool;
use tally::dashboards::{DASHBOARDS, expand, sql_queries};
use tally::demo::{GenerateOptions, generate};

use crate::harness::{TestDb, config, refresh_all};

/// Runs `sql` as tally_reader; returns its rows (as text) and the schemas its plan reads.
pub async fn as_reader(pool: &PgPool, sql: &str) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *tx).await?;
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT q::text FROM ({sql}) AS q")))
        .fetch_all(&mut *tx)
        .await?;
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (VERBOSE, FORMAT JSON) {sql}")))
        .fetch_one(&mut *tx)
        .await?;
    let mut schemas = Vec::new();
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(schema)) = map.get("Schema") {
                    schemas.push(schema.clone());
                }
                pending.extend(map.into_values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    tx.rollback().await?;
    Ok((rows, schemas))
}

#[tokio::test]
async fn every_dashboard_query_runs_as_tally_reader_returns_rows_and_reads_only_reporting() {
    let db = TestDb::migrated().await;
    let options = GenerateOptions { events: 40_000, days: 60, ..GenerateOptions::default() };
    generate(&db.pool, &config(""), &options).await.unwrap();
    refresh_all(&db.pool, &config("")).await;
    let (from, to) = (options.anchor - Duration::days(30), options.anchor);
    let mut checked = 0;
    for (name, text) in DASHBOARDS {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        let mut variables: BTreeMap<String, Vec<String>> = tally::dashboards::custom_variables(&dashboard);
        for query in sql_queries(name, &dashboard) {
            let sql = expand(&query.sql, from, to, &variables);
            let (rows, schemas) =
                as_reader(&db.pool, &sql).await.unwrap_or_else(|e| panic!("{name} / {}: {e}\n{sql}", query.title));
            assert!(!rows.is_empty(), "{name} / {}: no rows\n{sql}", query.title);
            assert!(schemas.iter().all(|s| s == "reporting"), "{name} / {}: reads {schemas:?}\n{sql}", query.title);
            if let Some(variable) = &query.variable {
                // The variable's values ("All") feed the queries after it.
                let values: Vec<String> = rows.iter().map(|r| r.trim_matches(['(', ')', '"']).to_string()).collect();
                variables.insert(variable.clone(), values);
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} queries checked");

    // The Campaigns table counts each visitor once over the range (weeks
    // from the weekly rollup, the days at either end from the daily one).
    let (name, text) = DASHBOARDS.iter().find(|(name, _)| *name == "campaign-performance.json").unwrap();
    let dashboard: Value = serde_json::from_str(text).unwrap();
    let campaigns = sql_queries(name, &dashboard).into_iter().find(|q| q.title == "Campaigns").unwrap();
    let values = |column: &'static str| {
        let pool = db.pool.clone();
        async move {
            let sql = format!("SELECT DISTINCT {column} FROM reporting.daily_campaign_metrics");
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch_all(&pool).await.unwrap()
        }
    };
    let all = BTreeMap::from([
        ("source".to_string(), values("utm_source").await),
        ("campaign".to_string(), values("utm_campaign").await),
    ]);
    let panel = expand(&campaigns.sql, from, to, &all);
    let compared: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH panel AS ({panel}),
         exact AS (
             SELECT coalesce(nullif(utm_source, ''), '(none)') AS source,
                    coalesce(nullif(utm_campaign, ''), '(none)') AS campaign, count(DISTINCT user_id) AS visitors
             FROM marketing.events
             WHERE (occurred_at AT TIME ZONE 'UTC')::date BETWEEN {from}::date AND {to}::date
             GROUP BY 1, 2)
         SELECT p.source || '/' || p.campaign, p.visitors, coalesce(e.visitors, 0)
         FROM panel AS p LEFT JOIN exact AS e USING (source, campaign)",
        from = tally::db::quote_literal(&from.to_rfc3339()),
        to = tally::db::quote_literal(&to.to_rfc3339()),
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(compared.len() >= 5, "{compared:?}");
    for (campaign, shown, exact) in &compared {
        let error = (shown - exact).abs() as f64 / (*exact).max(1) as f64;
        assert!(error <= 0.02, "{campaign}: the panel shows {shown} visitors, {exact} visited: {compared:?}");
    }
}

/// Whether `sql` sums a `visitors` column: distinct people summed over days
/// (or weeks, campaigns, mediums) count a returning visitor again (SPEC §4.1).
fn sums_visitors(sql: &str) -> bool {
    let flat: String = sql.to_lowercase().chars().filter(|c| !c.is_whitespace() && *c != '"').collect();
    flat.match_indices("sum(").any(|(at, _)| {
        let argument = flat[at + 4..].split(')').next().unwrap_or_default();
        argument.rsplit('.').next() == Some("visitors")
    })
}

#[test]
fn no_dashboard_query_sums_visitors() {
    assert!(sums_visitors("SELECT SUM( m.visitors )::bigint FROM reporting.daily_campaign_metrics AS m"));
    assert!(sums_visitors("select sum(\"visitors\") from reporting.campaign_performance"));
    assert!(!sums_visitors("SELECT hll_cardinality(hll_union_agg(visitors_hll)), sum(signups) FROM t"));
    assert!(!sums_visitors("SELECT sum(visitors_total) FROM t"));
    let mut checked = 0;
    for (name, text) in DASHBOARDS {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        for query in sql_queries(name, &dashboard) {
            assert!(
                !sums_visitors(&query.sql),
                "{name} / {}: sums a visitors column; count visitors over a range with \
                 hll_cardinality(hll_union_agg(visitors_hll))\n{}",
                query.title,
                query.sql
            );
            checked += query.sql.to_lowercase().contains("visitors") as usize;
        }
    }
    assert!(checked >= 3, "{checked} queries about visitors checked");
}
