//! The demo data generator: `sql/demo/generate.sql` run inside PostgreSQL,
//! deterministic for a seed, sized by the number of events.

use chrono::{Duration, Utc};
use sqlx::{AssertSqlSafe, PgPool};

use crate::config::Config;
use crate::error::Error;
use crate::partitions::{MANAGED_TABLES, Month, ensure_months, months_between};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Number of events.
    pub events: u64,
    /// Same seed and size, same rows (timestamps are relative to now).
    pub seed: u32,
    /// Days of history the events spread over, ending now.
    pub days: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { events: 200_000, seed: 42, days: 90 }
    }
}

/// Creates the partitions the data needs, then generates events, leads,
/// conversions and campaign spend in one transaction.
pub async fn generate(pool: &PgPool, config: &Config, options: &GenerateOptions) -> Result<(), Error> {
    let now = Utc::now();
    let first = Month::of((now - Duration::days(i64::from(options.days))).date_naive());
    let months = months_between(first, Month::of(now.date_naive()));
    for table in MANAGED_TABLES {
        ensure_months(pool, config, table, &months, false)
            .await
            .map_err(|e| Error::database("creating partitions for the demo data", &e))?;
    }
    let script = include_str!("../../sql/demo/generate.sql")
        .replace("{{seed}}", &format!("{:.9}", f64::from(options.seed) / f64::from(u32::MAX)))
        .replace("{{events}}", &options.events.to_string())
        .replace("{{days}}", &options.days.to_string());
    tracing::info!(events = options.events, days = options.days, seed = options.seed, "generating demo data");
    let started = std::time::Instant::now();
    let mut tx = pool.begin().await.map_err(|e| Error::database("generating demo data", &e))?;
    sqlx::raw_sql(AssertSqlSafe(script))
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::database("generating demo data", &e))?;
    tx.commit().await.map_err(|e| Error::database("generating demo data", &e))?;
    tracing::info!(elapsed = ?started.elapsed(), "demo data loaded");
    Ok(())
}
