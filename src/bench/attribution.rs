//! Attribution timings at one data size, on the data the refresh figures
//! were measured on: the build of `daily_attribution` (every model in one
//! pass over the touches), and an incremental refresh after the revenue of a
//! few conversions of one day changed (that day is rewritten).

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, Utc};
use sqlx::PgPool;

use super::refresh::{timed_refresh, verify, with_mode};
use super::{BenchOptions, median, show};
use crate::aggregates;
use crate::config::Config;
use crate::error::Error;

const AGGREGATE: &str = "daily_attribution";

/// The figures of one data size.
#[derive(Debug, Clone)]
pub struct AttributionResult {
    pub events: u64,
    pub rows: i64,
    pub build: Duration,
    pub incremental: Duration,
    pub days_refreshed: i64,
}

pub(super) async fn measure(
    pool: &PgPool,
    config: &Config,
    events: u64,
    options: &BenchOptions,
) -> Result<AttributionResult, Error> {
    let aggregate =
        aggregates::find(AGGREGATE).ok_or_else(|| Error::runtime("bench", "the attribution aggregate is missing"))?;
    let concurrently = Arc::new(with_mode(config, AGGREGATE, "concurrently")?);
    let incremental_config = Arc::new(with_mode(config, AGGREGATE, "incremental")?);
    let (build, _) = timed_refresh(pool, &concurrently, aggregate).await?;
    // Switch to incremental (a rebuild, not measured).
    timed_refresh(pool, &incremental_config, aggregate).await?;
    let mut incremental = Vec::new();
    let mut days_refreshed = 0;
    for i in 0..options.repeat {
        let day = (Utc::now() - Days::new(3 + u64::from(i))).date_naive();
        change_one_day(pool, day).await.map_err(|e| Error::database("changing conversions", &e))?;
        let (took, refreshed) = timed_refresh(pool, &incremental_config, aggregate).await?;
        incremental.push(took);
        days_refreshed = refreshed.unwrap_or(0);
    }
    verify(pool, &incremental_config, aggregate).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reporting.daily_attribution")
        .fetch_one(pool)
        .await
        .map_err(|e| Error::database("counting attribution rows", &e))?;
    tracing::info!(events, "benchmarked attribution");
    Ok(AttributionResult { events, rows, build, incremental: median(incremental), days_refreshed })
}

/// Changes the revenue of up to five conversions of `day` (UTC).
async fn change_one_day(pool: &PgPool, day: chrono::NaiveDate) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE marketing.conversions SET revenue = revenue + 1
         WHERE ctid IN (SELECT ctid FROM marketing.conversions
                        WHERE occurred_at >= $1::date::timestamp AT TIME ZONE 'UTC'
                          AND occurred_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC' LIMIT 5)",
    )
    .bind(day)
    .execute(pool)
    .await?;
    Ok(())
}

/// The Markdown table of attribution figures.
pub(super) fn table(results: &[AttributionResult], options: &BenchOptions) -> String {
    let mut out = format!(
        "Attribution: build of `{AGGREGATE}` (every model, in one pass over the touches) and an incremental refresh \
         after a few conversions of one day changed ({} days of data, median of {} runs, {})\n\n\
         | events | attribution rows | build | incremental |\n|---:|---:|---:|---:|\n",
        options.days,
        options.repeat,
        Utc::now().format("%Y-%m-%d")
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {} ({} day) |\n",
            r.events,
            r.rows,
            show(r.build),
            show(r.incremental),
            r.days_refreshed
        ));
    }
    out.push('\n');
    out
}
