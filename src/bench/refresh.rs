//! Refresh timings at one data size: build the campaign aggregate, change
//! about 1% of one day's events, and time `REFRESH MATERIALIZED VIEW
//! CONCURRENTLY` (through tally's refresh, as the worker runs it), a plain
//! `REFRESH MATERIALIZED VIEW`, and an incremental refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use super::{BenchOptions, median, show};
use crate::aggregates::{self, Aggregate};
use crate::config::Config;
use crate::demo::{GenerateOptions, generate};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::refresh::{RefreshOutcome, Refresher};

const AGGREGATE: &str = "daily_campaign_metrics";

/// The figures of one data size.
#[derive(Debug, Clone)]
pub struct RefreshResult {
    pub events: u64,
    pub rows_changed: i64,
    pub build: Duration,
    pub concurrently: Duration,
    pub plain: Duration,
    pub incremental: Duration,
    pub days_refreshed: i64,
}

pub(super) async fn measure(
    pool: &PgPool,
    config: &Arc<Config>,
    events: u64,
    options: &BenchOptions,
) -> Result<RefreshResult, Error> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: sqlx::Error| Error::database(what.clone(), &e)
    };
    let generated = GenerateOptions { events, seed: options.seed, days: options.days, ..GenerateOptions::default() };
    generate(pool, config, &generated).await?;
    super::settle(pool).await?;
    let aggregate =
        aggregates::find(AGGREGATE).ok_or_else(|| Error::runtime("bench", "the campaign aggregate is missing"))?;

    let concurrently_config = Arc::new(with_mode(config, AGGREGATE, "concurrently")?);
    let incremental_config = Arc::new(with_mode(config, AGGREGATE, "incremental")?);
    let (build, _) = timed_refresh(pool, &concurrently_config, aggregate).await?;
    let days: Vec<chrono::NaiveDate> =
        (0..options.repeat).map(|i| (generated.anchor - Days::new(5 + u64::from(i))).date_naive()).collect();

    let mut rows_changed = 0;
    let mut concurrently = Vec::new();
    for day in &days {
        rows_changed = change_one_percent(pool, *day).await.map_err(failed("changing events"))?;
        concurrently.push(timed_refresh(pool, &concurrently_config, aggregate).await?.0);
    }
    let mut plain = Vec::new();
    for _ in &days {
        let started = Instant::now();
        sqlx::query(AssertSqlSafe(format!("REFRESH MATERIALIZED VIEW {}", aggregate.qualified_name())))
            .execute(pool)
            .await
            .map_err(failed("REFRESH MATERIALIZED VIEW"))?;
        plain.push(started.elapsed());
    }
    // Switch to incremental (a rebuild, not measured), then the same kind of change.
    timed_refresh(pool, &incremental_config, aggregate).await?;
    let mut incremental = Vec::new();
    let mut days_refreshed = 0;
    for day in &days {
        change_one_percent(pool, *day).await.map_err(failed("changing events"))?;
        let (took, refreshed) = timed_refresh(pool, &incremental_config, aggregate).await?;
        incremental.push(took);
        days_refreshed = refreshed.unwrap_or(0);
    }
    verify(pool, &incremental_config, aggregate).await?;
    tracing::info!(events, "benchmarked refreshes");
    Ok(RefreshResult {
        events,
        rows_changed,
        build,
        concurrently: median(concurrently),
        plain: median(plain),
        incremental: median(incremental),
        days_refreshed,
    })
}

/// `config` with `aggregate` in `mode`.
pub(super) fn with_mode(config: &Config, aggregate: &str, mode: &str) -> Result<Config, Error> {
    Ok(Config::from_toml(&config_text(config, &[aggregate], mode), std::path::Path::new("(bench)"))?)
}

/// The bench's config file: `config`'s timezone and attribution settings,
/// with `aggregates` in `mode`.
pub(super) fn config_text(config: &Config, aggregates: &[&str], mode: &str) -> String {
    let mut text = format!(
        "reporting_timezone = \"{}\"\nattribution_lookback_days = {}\nattribution_half_life_days = {}\n",
        config.reporting_timezone.name(),
        config.attribution_lookback_days,
        config.attribution_half_life_days
    );
    for aggregate in aggregates {
        text.push_str(&format!("[aggregates.{aggregate}]\nmode = \"{mode}\"\n"));
    }
    text
}

/// Refreshes through tally's own path; returns the duration and the days rewritten.
pub(super) async fn timed_refresh(
    pool: &PgPool,
    config: &Arc<Config>,
    aggregate: &'static Aggregate,
) -> Result<(Duration, Option<i64>), Error> {
    let metrics = Arc::new(Metrics::new(&crate::refresh::policy::metric_series(config)));
    let refresher = Refresher::new(pool.clone(), config.clone(), metrics, CancellationToken::new());
    let report = refresher.refresh(aggregate).await.map_err(|why| Error::runtime("bench", why.to_string()))?;
    if report.outcome != RefreshOutcome::Success {
        return Err(Error::runtime(format!("refreshing {}", aggregate.name), report.error.unwrap_or_default()));
    }
    Ok(((report.finished_at - report.started_at).to_std().unwrap_or_default(), report.days))
}

/// Touches about 1% of the events of `day` (UTC), and at least one, changing
/// their properties (on a small data set no id of the day may be a multiple of 100).
async fn change_one_percent(pool: &PgPool, day: chrono::NaiveDate) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "WITH the_day AS (
             SELECT id, occurred_at FROM marketing.events
             WHERE occurred_at >= $1::date::timestamp AT TIME ZONE 'UTC'
               AND occurred_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC')
         UPDATE marketing.events e SET properties = e.properties || '{\"bench\": true}'
         FROM the_day d
         WHERE e.id = d.id AND e.occurred_at = d.occurred_at
           AND (d.id % 100 = 0 OR d.id = (SELECT min(id) FROM the_day))",
    )
    .bind(day)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() as i64)
}

/// The incremental table must equal a full computation, or the figures mean nothing.
pub(super) async fn verify(pool: &PgPool, config: &Config, aggregate: &Aggregate) -> Result<(), Error> {
    match super::differences(pool, config, aggregate).await? {
        0 => Ok(()),
        n => Err(Error::runtime(
            "bench",
            format!("the incremental aggregate differs from a full computation in {n} rows"),
        )),
    }
}

/// The Markdown table of refresh figures.
pub(super) fn table(results: &[RefreshResult], options: &BenchOptions) -> String {
    let mut out = format!(
        "Refresh of `{AGGREGATE}` after changing about 1% of one day's events ({} days of data, median of {} runs, {})\n\n\
         | events | rows changed | build | REFRESH CONCURRENTLY | REFRESH (plain) | incremental | incremental vs CONCURRENTLY | incremental vs plain |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        options.days,
        options.repeat,
        Utc::now().format("%Y-%m-%d")
    );
    for r in results {
        let ratio = |slow: Duration| super::ratio(slow, r.incremental);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} ({} day) | {} | {} |\n",
            r.events,
            r.rows_changed,
            show(r.build),
            show(r.concurrently),
            show(r.plain),
            show(r.incremental),
            r.days_refreshed,
            ratio(r.concurrently),
            ratio(r.plain)
        ));
    }
    out.push('\n');
    out
}
