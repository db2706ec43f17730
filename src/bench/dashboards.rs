//! Dashboard query latency: every SQL query of the shipped dashboards,
//! expanded as Grafana expands it for the last 30 days, run as
//! `tally_reader` against the aggregates of the largest data set; p95 of
//! each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use super::show;
use crate::aggregates;
use crate::config::Config;
use crate::dashboards::{DASHBOARDS, expand, sql_queries};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::refresh::{RefreshOutcome, Refresher};

/// p50 and p95 of one dashboard query.
#[derive(Debug, Clone)]
pub struct QueryTiming {
    pub dashboard: String,
    pub title: String,
    pub p50: Duration,
    pub p95: Duration,
}

pub(super) async fn measure(pool: &PgPool, config: &Arc<Config>, runs: u32) -> Result<Vec<QueryTiming>, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    // Every aggregate built in its default (concurrently) mode.
    let metrics = Arc::new(Metrics::new(&crate::refresh::policy::metric_series(config)));
    let refresher = Refresher::new(pool.clone(), config.clone(), metrics, CancellationToken::new());
    for aggregate in aggregates::REGISTRY {
        let report = refresher.refresh(aggregate).await.map_err(|why| Error::runtime("bench", why.to_string()))?;
        if report.outcome != RefreshOutcome::Success {
            return Err(Error::runtime(format!("refreshing {}", aggregate.name), report.error.unwrap_or_default()));
        }
    }
    let (to, from) = (Utc::now(), Utc::now() - chrono::Duration::days(30));
    let mut timings = Vec::new();
    for (name, text) in DASHBOARDS {
        let dashboard: Value = serde_json::from_str(text).map_err(|e| Error::runtime("bench", e.to_string()))?;
        let mut variables: BTreeMap<String, Vec<String>> = crate::dashboards::custom_variables(&dashboard);
        for query in sql_queries(name, &dashboard) {
            let sql = expand(&query.sql, from, to, &variables);
            let mut samples = Vec::new();
            let mut tx = pool.begin().await.map_err(failed("beginning"))?;
            sqlx::query("SET LOCAL ROLE tally_reader")
                .execute(&mut *tx)
                .await
                .map_err(failed("SET ROLE tally_reader"))?;
            let mut values = Vec::new();
            for _ in 0..runs.max(1) {
                let started = Instant::now();
                values = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SELECT q::text FROM ({sql}) AS q")))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| Error::database(format!("{name} / {}", query.title), &e))?;
                samples.push(started.elapsed());
            }
            tx.rollback().await.map_err(failed("rolling back"))?;
            if let Some(variable) = &query.variable {
                variables.insert(
                    variable.clone(),
                    values.iter().map(|v| v.trim_matches(['(', ')', '"']).to_string()).collect(),
                );
            }
            let (p50, p95) = super::percentiles(samples);
            timings.push(QueryTiming { dashboard: name.to_string(), title: query.title.clone(), p50, p95 });
        }
    }
    tracing::info!(queries = timings.len(), "benchmarked dashboard queries");
    Ok(timings)
}

/// The Markdown table of dashboard query latencies.
pub(super) fn table(events: u64, runs: u32, timings: &[QueryTiming]) -> String {
    let mut out = format!(
        "Dashboard SQL queries over the last 30 days, as `tally_reader`, on the aggregates of {events} events ({runs} runs each)\n\n\
         | dashboard | query | p50 | p95 |\n|---|---|---:|---:|\n"
    );
    for t in timings {
        out.push_str(&format!("| {} | {} | {} | {} |\n", t.dashboard, t.title, show(t.p50), show(t.p95)));
    }
    let worst = timings.iter().map(|t| t.p95).max().unwrap_or_default();
    out.push_str(&format!("\nSlowest p95: {}\n\n", show(worst)));
    out
}
