//! What the visitor sketches cost a refresh, at one data size, on the data
//! the refresh figures were measured on: the definition of
//! `daily_campaign_metrics` computed over all days (a build) and over one
//! day (what an incremental refresh recomputes), each with and without the
//! `visitors_hll` column, into a temporary table, alternately.

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use sqlx::{AssertSqlSafe, PgPool};

use super::{BenchOptions, median, show};
use crate::aggregates::{self, Features, incremental};
use crate::config::Config;
use crate::error::Error;

const AGGREGATE: &str = "daily_campaign_metrics";

/// The figures of one data size: (with sketches, without) for each.
#[derive(Debug, Clone)]
pub struct SketchCost {
    pub events: u64,
    pub build: (Duration, Duration),
    pub one_day: (Duration, Duration),
}

pub(super) async fn measure(
    pool: &PgPool,
    config: &Config,
    events: u64,
    options: &BenchOptions,
) -> Result<SketchCost, Error> {
    let aggregate = aggregates::find(AGGREGATE).ok_or_else(|| Error::runtime("bench", "the aggregate is missing"))?;
    let day = (Utc::now() - Days::new(5)).date_naive();
    let scope = incremental::scope(aggregate.scope_column, &config.reporting_timezone.sql_literal(), &[day]);
    let (with, without) = (Features { sketches: true }, Features { sketches: false });
    let mut conn = pool.acquire().await.map_err(|e| Error::database("connecting", &e))?;
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for _ in 0..options.repeat {
        let definitions = [
            aggregate.definition(config, with),
            aggregate.definition(config, without),
            aggregate.scoped_definition(config, with, &scope),
            aggregate.scoped_definition(config, without, &scope),
        ];
        for (definition, samples) in definitions.iter().zip(samples.iter_mut()) {
            let started = Instant::now();
            sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE TEMP TABLE sketch_cost AS {definition}; DROP TABLE sketch_cost"
            )))
            .execute(&mut *conn)
            .await
            .map_err(|e| Error::database("computing daily_campaign_metrics", &e))?;
            samples.push(started.elapsed());
        }
    }
    let [build_with, build_without, day_with, day_without] = samples.map(median);
    tracing::info!(events, "benchmarked the cost of the visitor sketches");
    Ok(SketchCost { events, build: (build_with, build_without), one_day: (day_with, day_without) })
}

/// The Markdown table of the sketch figures.
pub(super) fn table(results: &[SketchCost], options: &BenchOptions) -> String {
    let mut out = format!(
        "Cost of `visitors_hll` in `{AGGREGATE}`: its definition computed with and without the sketch column \
         ({} days of data, median of {} runs, {})\n\n\
         | events | all days, with | all days, without | ratio | one day, with | one day, without | ratio |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        options.days,
        options.repeat,
        Utc::now().format("%Y-%m-%d")
    );
    for r in results {
        let ratio = |(with, without): (Duration, Duration)| {
            format!("{:.2}×", with.as_secs_f64() / without.as_secs_f64().max(1e-9))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.events,
            show(r.build.0),
            show(r.build.1),
            ratio(r.build),
            show(r.one_day.0),
            show(r.one_day.1),
            ratio(r.one_day)
        ));
    }
    out.push('\n');
    out
}
