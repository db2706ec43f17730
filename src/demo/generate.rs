//! The demo data generator: `sql/demo/*.sql` run inside PostgreSQL (so
//! nothing is held in tally's memory and it scales to tens of millions of
//! events), deterministic for a seed and an anchor time, in chunks so that a
//! progress bar (on a terminal) or log lines (otherwise) can follow it.

use std::io::IsTerminal;

use chrono::{DateTime, Duration, DurationRound, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{PgConnection, PgPool};

use crate::config::Config;
use crate::error::Error;
use crate::partitions::{ManagedTable, Month, create_months, months_between};

/// Events per statement: small enough for a lively progress bar, large
/// enough that statement overhead does not matter.
const CHUNK: u64 = 250_000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of events (exactly).
    pub events: u64,
    /// The same seed, size, days and anchor give the same rows.
    pub seed: u32,
    /// Days of history the events spread over, ending at the anchor.
    pub days: u32,
    /// The newest instant of the data set (default: now, to the minute).
    pub anchor: DateTime<Utc>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        let now = Utc::now();
        GenerateOptions {
            events: 200_000,
            seed: 42,
            days: 90,
            anchor: now.duration_trunc(Duration::minutes(1)).unwrap_or(now),
        }
    }
}

/// Row counts of a generated data set.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Generated {
    pub events: i64,
    pub leads: i64,
    pub conversions: i64,
    pub spend_days: i64,
}

/// Creates the partitions the data needs, then generates events, leads,
/// conversions and campaign spend in one transaction: all of it or nothing.
pub async fn generate(pool: &PgPool, config: &Config, options: &GenerateOptions) -> Result<Generated, Error> {
    let failed = |e: sqlx::Error| Error::database("generating demo data", &e);
    // Weekend sessions move up to six days back; a week of margin covers them.
    let first = Month::of((options.anchor - Duration::days(i64::from(options.days) + 7)).date_naive());
    let months = months_between(first, Month::of(options.anchor.date_naive()));
    create_months(pool, config, &ManagedTable::events(), &months)
        .await
        .map_err(|e| Error::runtime("creating partitions for the demo data", e.to_string()))?;
    tracing::info!(events = options.events, days = options.days, seed = options.seed, "generating demo data");
    let started = std::time::Instant::now();
    let progress = Progress::new(options.events);
    let mut tx = pool.begin().await.map_err(failed)?;
    run(&mut tx, include_str!("../../sql/demo/setup.sql"), options, (0, 0)).await.map_err(failed)?;
    let mut first_event = 1;
    while first_event <= options.events {
        let last_event = (first_event + CHUNK - 1).min(options.events);
        run(&mut tx, include_str!("../../sql/demo/events.sql"), options, (first_event, last_event))
            .await
            .map_err(failed)?;
        progress.advance(last_event);
        first_event = last_event + 1;
    }
    progress.finish();
    run(&mut tx, include_str!("../../sql/demo/people.sql"), options, (0, 0)).await.map_err(failed)?;
    let generated: Generated = sqlx::query_as(
        "SELECT (SELECT count(*) FROM marketing.events) AS events, (SELECT count(*) FROM marketing.leads) AS leads,
                (SELECT count(*) FROM marketing.conversions) AS conversions,
                (SELECT count(*) FROM marketing.campaign_spend) AS spend_days",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    tracing::info!(
        events = generated.events,
        leads = generated.leads,
        conversions = generated.conversions,
        elapsed = ?started.elapsed(),
        "demo data loaded"
    );
    Ok(generated)
}

/// Runs one script with its placeholders filled in; every value is a number
/// or a timestamp tally formatted itself.
async fn run(
    conn: &mut PgConnection,
    script: &str,
    options: &GenerateOptions,
    range: (u64, u64),
) -> Result<(), sqlx::Error> {
    let sql = script
        .replace("{{seed}}", &options.seed.to_string())
        .replace("{{events}}", &options.events.to_string())
        .replace("{{days}}", &options.days.to_string())
        .replace("{{anchor}}", &format!("'{}'", options.anchor.format("%Y-%m-%d %H:%M:%S%.6f+00")))
        .replace("{{first}}", &range.0.to_string())
        .replace("{{last}}", &range.1.to_string());
    crate::db::execute(conn, sql).await
}

/// A progress bar on a terminal, a log line every 10% otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message("generating");
            bar
        });
        Progress { bar, total }
    }

    fn advance(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let step = (self.total / 10).max(1);
                let before = done.saturating_sub(CHUNK.min(done));
                if done == self.total || done / step != before / step {
                    tracing::info!(done, total = self.total, "generating events");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
