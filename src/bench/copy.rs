//! The ingest overhead of incremental mode's invalidation triggers: the same
//! COPY into an empty month of `marketing.events`, with the triggers
//! installed and without, alternating, median of each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{median, show};
use crate::aggregates::triggers;
use crate::config::Config;
use crate::error::Error;
use crate::partitions::{ManagedTable, Month, create_months};

/// Rows per COPY message.
const CHUNK: u64 = 10_000;

/// COPY timings with and without triggers.
#[derive(Debug, Clone)]
pub struct CopyResult {
    pub rows: u64,
    pub without_triggers: Duration,
    pub with_triggers: Duration,
}

pub(super) async fn measure(pool: &PgPool, config: &Arc<Config>, rows: u64, repeat: u32) -> Result<CopyResult, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    // An empty month far ahead, so each COPY meets the same empty partition.
    let month = Month::of(chrono::Utc::now().date_naive()).plus(18);
    create_months(pool, config, &ManagedTable::events(), &[month])
        .await
        .map_err(|e| Error::runtime("bench", e.to_string()))?;
    let all_incremental = Config::from_toml(
        "[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n[aggregates.daily_event_counts]\nmode = \"incremental\"\n\
         [aggregates.daily_lead_funnel]\nmode = \"incremental\"\n[aggregates.daily_attribution]\nmode = \"incremental\"\n",
        std::path::Path::new("(bench)"),
    )?;
    let none_incremental = Config::from_toml("", std::path::Path::new("(bench)"))?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..repeat.max(1) {
        for (installed, samples) in [(&none_incremental, &mut without), (&all_incremental, &mut with)] {
            triggers::ensure(pool, installed)
                .await
                .map_err(|e| Error::runtime("bench: setting up triggers", e.to_string()))?;
            samples.push(copy(pool, month, rows).await.map_err(failed("COPY"))?);
            let partition = format!("TRUNCATE marketing.{}", month.partition_name("events"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(partition)).execute(pool).await.map_err(failed("TRUNCATE"))?;
            sqlx::query("DELETE FROM tally.invalidations").execute(pool).await.map_err(failed("clearing marks"))?;
        }
    }
    tracing::info!(rows, "benchmarked COPY with and without triggers");
    Ok(CopyResult { rows, without_triggers: median(without), with_triggers: median(with) })
}

/// COPYs `rows` generated events (CSV) into `month`; returns the time taken.
async fn copy(pool: &PgPool, month: Month, rows: u64) -> Result<Duration, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY marketing.events (event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at) \
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    let start = month.start();
    let seconds_in_month = (month.plus(1).start() - start).num_seconds().max(1) as u64;
    let mut sent = 0;
    while sent < rows {
        let mut chunk = String::with_capacity(CHUNK as usize * 160);
        for i in sent..(sent + CHUNK).min(rows) {
            let at = start + chrono::Duration::seconds(((i * 7919) % seconds_in_month) as i64);
            let (event, properties) = match i % 25 {
                0 => ("purchase", format!("\"{{\"\"url\"\": \"\"/checkout\"\", \"\"revenue\"\": {}.50}}\"", i % 300)),
                1 => ("signup", "\"{\"\"url\"\": \"\"/signup\"\"}\"".to_string()),
                _ => ("page_view", "\"{\"\"url\"\": \"\"/pricing\"\"}\"".to_string()),
            };
            let utm =
                ["google,cpc,brand", "facebook,paid_social,spring", ",,", "newsletter,email,weekly"][(i % 4) as usize];
            chunk.push_str(&format!(
                "copy-{i},visitor-{},{event},{properties},session-{},{utm},{}\n",
                i % 50_000,
                i / 4,
                at.format("%Y-%m-%d %H:%M:%S+00")
            ));
        }
        copy.send(chunk.into_bytes()).await?;
        sent = (sent + CHUNK).min(rows);
    }
    copy.finish().await?;
    Ok(started.elapsed())
}

/// The Markdown table of the COPY figures.
pub(super) fn table(result: &CopyResult) -> String {
    let rate = |d: Duration| result.rows as f64 / d.as_secs_f64().max(1e-9);
    let overhead = (result.with_triggers.as_secs_f64() / result.without_triggers.as_secs_f64().max(1e-9) - 1.0) * 100.0;
    format!(
        "COPY of {} events into an empty month of `marketing.events` (median)\n\n\
         | invalidation triggers | time | rows/s |\n|---|---:|---:|\n\
         | none (all aggregates `concurrently`) | {} | {:.0} |\n\
         | installed (all aggregates `incremental`) | {} | {:.0} |\n\n\
         Trigger overhead: {overhead:+.1}%\n\n",
        result.rows,
        show(result.without_triggers),
        rate(result.without_triggers),
        show(result.with_triggers),
        rate(result.with_triggers)
    )
}
