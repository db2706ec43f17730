//! The whole refresh cycle, as users run it (BENCHMARKS.md, "The whole
//! cycle"): after one minute of traffic (`sql/bench/minute_of_traffic.sql`:
//! 5,000 new events, 50 new conversions, 20 late events three days back),
//! every aggregate is refreshed, with all rollups in `concurrently` mode and
//! then all in `incremental` mode. Two figures per mode:
//!
//! - whole process: `tally refresh` run as cron runs it (this executable,
//!   a fresh process and connection), wall time;
//! - inside the worker: the same refreshes by an in-process [`Refresher`]
//!   on an open pool, as the worker runs them, summed from
//!   `tally.refresh_runs`.
//!
//! Before the figures count, each incremental rollup is compared with its
//! definition computed from scratch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use super::{BenchOptions, median, ratio, show};
use crate::aggregates::{Kind, REGISTRY};
use crate::config::Config;
use crate::db::DatabaseUrl;
use crate::db::template::render;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::refresh::{RefreshOutcome, Refresher};

const TRAFFIC: &str = include_str!("../../sql/bench/minute_of_traffic.sql");
const MODES: [&str; 2] = ["concurrently", "incremental"];

/// The figures of one data size.
#[derive(Debug, Clone)]
pub struct CycleResult {
    pub events: u64,
    /// Medians per mode, in [`MODES`] order.
    pub process: [Duration; 2],
    pub worker: [Duration; 2],
    /// Each aggregate's share of the last whole-process run, per mode.
    pub parts: BTreeMap<&'static str, [Duration; 2]>,
    /// Days each incremental rollup rewrote in the last whole-process run.
    pub days: BTreeMap<&'static str, i64>,
}

pub(super) async fn measure(
    pool: &PgPool,
    url: &DatabaseUrl,
    config: &Config,
    events: u64,
    options: &BenchOptions,
) -> Result<CycleResult, Error> {
    let mut result = CycleResult {
        events,
        process: [Duration::ZERO; 2],
        worker: [Duration::ZERO; 2],
        parts: BTreeMap::new(),
        days: BTreeMap::new(),
    };
    let mut run = 0;
    for (m, mode) in MODES.iter().enumerate() {
        let (text, mode_config) = all_in(config, mode)?;
        let file = tempfile::NamedTempFile::new().map_err(|e| Error::runtime("bench", e.to_string()))?;
        std::fs::write(file.path(), &text).map_err(|e| Error::runtime("bench", e.to_string()))?;
        let refresher = Refresher::new(
            pool.clone(),
            mode_config.clone(),
            Arc::new(Metrics::new(&crate::refresh::policy::metric_series(&mode_config))),
            CancellationToken::new(),
        );
        // Builds or switches every rollup to the mode (not measured).
        refresh_all(&refresher).await?;
        let (mut process, mut worker) = (Vec::new(), Vec::new());
        for _ in 0..options.repeat {
            run += 1;
            traffic(pool, run).await?;
            let started = Utc::now();
            let clock = Instant::now();
            let status = tokio::process::Command::new(
                std::env::current_exe().map_err(|e| Error::runtime("bench", e.to_string()))?,
            )
            .arg("refresh")
            .env("DATABASE_URL", url.expose())
            .env("TALLY_CONFIG", file.path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| Error::runtime("bench", format!("running tally refresh: {e}")))?;
            process.push(clock.elapsed());
            if !status.success() {
                return Err(Error::runtime("bench", format!("tally refresh ({mode}) exited with {status}")));
            }
            for (name, took, days) in runs_since(pool, started).await? {
                result.parts.entry(name).or_insert([Duration::ZERO; 2])[m] = took;
                if let Some(days) = days.filter(|_| *mode == "incremental") {
                    result.days.insert(name, days);
                }
            }
            run += 1;
            traffic(pool, run).await?;
            let started = Utc::now();
            refresh_all(&refresher).await?;
            worker.push(runs_since(pool, started).await?.iter().map(|(_, took, _)| *took).sum());
        }
        result.process[m] = median(process);
        result.worker[m] = median(worker);
        if *mode == "incremental" {
            for aggregate in REGISTRY.iter().filter(|a| a.kind == Kind::Rollup && !a.dirtied_by.is_empty()) {
                super::refresh::verify(pool, &mode_config, aggregate).await?;
            }
        }
    }
    tracing::info!(events, "benchmarked the whole refresh cycle");
    Ok(result)
}

/// The config file text with every rollup in `mode`, and the config itself.
fn all_in(config: &Config, mode: &str) -> Result<(String, Arc<Config>), Error> {
    let rollups: Vec<&str> = REGISTRY.iter().filter(|a| a.kind == Kind::Rollup).map(|a| a.name).collect();
    let text = super::refresh::config_text(config, &rollups, mode);
    let parsed = Config::from_toml(&text, std::path::Path::new("(bench)"))?;
    Ok((text, Arc::new(parsed)))
}

/// Every aggregate the server can hold, in dependency order, as the worker
/// and `tally refresh` run them.
async fn refresh_all(refresher: &Refresher) -> Result<(), Error> {
    for aggregate in REGISTRY {
        let report = match refresher.refresh(aggregate).await {
            Ok(report) => report,
            // Rollups of sketches on a server without hll: skipped by both.
            Err(crate::refresh::NotStarted::NeedsSketches) => continue,
            Err(why) => return Err(Error::runtime("bench", format!("{}: {why}", aggregate.name))),
        };
        if report.outcome != RefreshOutcome::Success {
            return Err(Error::runtime(format!("refreshing {}", aggregate.name), report.error.unwrap_or_default()));
        }
    }
    Ok(())
}

/// One minute of traffic; `run` keeps its ids apart from other runs'.
async fn traffic(pool: &PgPool, run: u32) -> Result<(), Error> {
    sqlx::raw_sql(AssertSqlSafe(render(TRAFFIC, &[("run", &run.to_string())])))
        .execute(pool)
        .await
        .map_err(|e| Error::database("writing a minute of traffic", &e))?;
    Ok(())
}

/// The successful refreshes started since `since`: aggregate, duration,
/// periods rewritten (incremental refreshes).
async fn runs_since(pool: &PgPool, since: DateTime<Utc>) -> Result<Vec<(&'static str, Duration, Option<i64>)>, Error> {
    let rows: Vec<(String, f64, Option<i32>)> = sqlx::query_as(
        "SELECT aggregate, extract(epoch FROM finished_at - started_at)::float8, days_refreshed
         FROM tally.refresh_runs WHERE started_at >= $1 AND outcome = 'success' ORDER BY started_at",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::database("reading tally.refresh_runs", &e))?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, seconds, days)| {
            let aggregate = REGISTRY.iter().find(|a| a.name == name)?;
            Some((aggregate.name, Duration::from_secs_f64(seconds.max(0.0)), days.map(i64::from)))
        })
        .collect())
}

/// The Markdown tables of the whole cycle.
pub(super) fn table(results: &[CycleResult], options: &BenchOptions) -> String {
    let mut out = format!(
        "The whole cycle: every aggregate refreshed after one minute of traffic (5,000 new events, 50 new \
         conversions, 20 late events three days back), all rollups `concurrently` vs all `incremental` \
         ({} days of data, median of {} runs, {})\n\n\
         | events | whole process, concurrently | whole process, incremental | ratio | inside the worker, concurrently | inside the worker, incremental | ratio |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        options.days,
        options.repeat,
        Utc::now().format("%Y-%m-%d")
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.events,
            show(r.process[0]),
            show(r.process[1]),
            ratio(r.process[0], r.process[1]),
            show(r.worker[0]),
            show(r.worker[1]),
            ratio(r.worker[0], r.worker[1])
        ));
    }
    for r in results {
        out.push_str(&format!(
            "\nEach aggregate in the last whole-process run at {} events (from `tally.refresh_runs`)\n\n\
             | aggregate | concurrently | incremental | rewritten |\n|---|---:|---:|---:|\n",
            r.events
        ));
        for (name, [slow, fast]) in REGISTRY.iter().filter_map(|a| r.parts.get_key_value(a.name)) {
            let days = r.days.get(name).map_or("-".to_string(), |d| d.to_string());
            out.push_str(&format!("| `{name}` | {} | {} | {days} |\n", show(*slow), show(*fast)));
        }
    }
    out.push('\n');
    out
}
