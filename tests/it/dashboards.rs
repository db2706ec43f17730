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
        let mut variables: BTreeMap<String, Vec<String>> = BTreeMap::new();
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
    assert!(checked >= 13, "{checked} queries checked");
}
