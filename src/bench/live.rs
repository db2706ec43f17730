//! Live reads at one data size (SPEC §4.3): the dashboard's per-day panel
//! (last 30 days, every source and campaign, as `tally_reader`) on
//! `daily_campaign_metrics` and on `daily_campaign_metrics_live`, with 0, 1
//! and 7 days waiting for a refresh (one new event on each, written alone:
//! keyed marks, so only its campaign's rows of the day are recomputed), and
//! 1 day written by a batch across every campaign (the whole day recomputed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{AssertSqlSafe, PgPool};

use super::refresh::{timed_refresh, with_mode};
use super::show;
use crate::aggregates;
use crate::config::Config;
use crate::dashboards::{DASHBOARDS, expand, sql_queries};
use crate::error::Error;

const AGGREGATE: &str = "daily_campaign_metrics";
const PANEL: &str = "Visitors, signups and purchases per day";

/// p50 and p95 on the table and on the live view, for some dirty days.
#[derive(Debug, Clone)]
pub struct LiveTiming {
    pub dirty_days: u32,
    /// The day was written by a batch (more than `KEYED_MARK_ROWS` rows).
    pub batch: bool,
    pub stored: (Duration, Duration),
    pub live: (Duration, Duration),
}

pub(super) async fn measure(pool: &PgPool, config: &Config, runs: u32) -> Result<Vec<LiveTiming>, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    let aggregate = aggregates::find(AGGREGATE).ok_or_else(|| Error::runtime("bench", "no campaign aggregate"))?;
    let incremental = Arc::new(with_mode(config, AGGREGATE, "incremental")?);
    let (name, text) = DASHBOARDS[0];
    let dashboard: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::runtime("bench", e.to_string()))?;
    let panel = sql_queries(name, &dashboard)
        .into_iter()
        .find(|q| q.title == PANEL)
        .ok_or_else(|| Error::runtime("bench", format!("no panel {PANEL}")))?;
    let mut timings = Vec::new();
    for (dirty_days, batch) in [(0u32, false), (1, false), (7, false), (1, true)] {
        // Refreshed (live view created, nothing waiting), then the new events:
        // one per day, or a batch of one day across the stored campaigns.
        timed_refresh(pool, &incremental, aggregate).await?;
        let write = match batch {
            false => {
                "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at)
                      SELECT 'bench-live', 'signup', 'google', 'brand_search', now() - g * interval '1 day'
                      FROM generate_series(1, $1) AS g"
            }
            true => {
                "INSERT INTO marketing.events (user_id, event, utm_source, utm_medium, utm_campaign, occurred_at)
                     SELECT 'bench-live', 'page_view', c.utm_source, c.utm_medium, c.utm_campaign,
                            now() - $1 * interval '1 day'
                     FROM (SELECT DISTINCT utm_source, utm_medium, utm_campaign
                           FROM reporting.daily_campaign_metrics) AS c, generate_series(1, 70)"
            }
        };
        sqlx::query(AssertSqlSafe(write))
            .bind(dirty_days as i32)
            .execute(pool)
            .await
            .map_err(failed("writing new events"))?;
        let mut pair = Vec::new();
        for relation in [AGGREGATE.to_string(), format!("{AGGREGATE}_live")] {
            let mut variables = BTreeMap::from([("metrics".to_string(), vec![relation])]);
            for (variable, column) in [("source", "utm_source"), ("campaign", "utm_campaign")] {
                let values: Vec<String> =
                    sqlx::query_scalar(AssertSqlSafe(format!("SELECT DISTINCT {column} FROM reporting.{AGGREGATE}")))
                        .fetch_all(pool)
                        .await
                        .map_err(failed("reading the variables"))?;
                variables.insert(variable.to_string(), values);
            }
            let sql = expand(&panel.sql, Utc::now() - chrono::Duration::days(30), Utc::now(), &variables);
            pair.push(timed(pool, &sql, runs).await?);
        }
        timings.push(LiveTiming { dirty_days, batch, stored: pair[0], live: pair[1] });
    }
    tracing::info!("benchmarked live reads");
    Ok(timings)
}

/// p50 and p95 of `sql` run `runs` times as tally_reader.
async fn timed(pool: &PgPool, sql: &str, runs: u32) -> Result<(Duration, Duration), Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    let mut tx = pool.begin().await.map_err(failed("starting"))?;
    sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *tx).await.map_err(failed("SET ROLE tally_reader"))?;
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut *tx).await.map_err(failed("the panel's query"))?;
        samples.push(started.elapsed());
    }
    tx.rollback().await.map_err(failed("rolling back"))?;
    Ok(super::percentiles(samples))
}

/// The Markdown table of live read latencies.
pub(super) fn table(events: u64, runs: u32, timings: &[LiveTiming]) -> String {
    let mut out = format!(
        "Live reads: the dashboard panel \"{PANEL}\" (30 days, every source and campaign, as `tally_reader`) on \
         `{AGGREGATE}` and `{AGGREGATE}_live` at {events} events, with days waiting for a refresh ({runs} runs each)\n\n\
         | dirty days | written by | stored p50 | stored p95 | live p50 | live p95 |\n|---:|---|---:|---:|---:|---:|\n"
    );
    for t in timings {
        let written = match (t.dirty_days, t.batch) {
            (0, _) => "-",
            (_, false) => "one event a day, alone (keyed)",
            (_, true) => "a batch, every campaign (whole day)",
        };
        out.push_str(&format!(
            "| {} | {written} | {} | {} | {} | {} |\n",
            t.dirty_days,
            show(t.stored.0),
            show(t.stored.1),
            show(t.live.0),
            show(t.live.1)
        ));
    }
    out.push('\n');
    out
}
