//! `tally demo`: the whole product on a realistic data set in one command.
//! Without `DATABASE_URL` it starts a throwaway PostgreSQL cluster; it then
//! migrates, loads generated data, refreshes every aggregate, prints a
//! campaign report, and keeps the worker running until Ctrl-C (`--once`:
//! print and exit). With `DATABASE_URL`, it never loads demo data into a
//! database whose marketing tables already have rows.

mod generate;
pub mod report;

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

pub use generate::{GenerateOptions, generate};
pub use report::campaign_report;

use crate::config::Config;
use crate::db::{self, DatabaseUrl, Patience};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::refresh::{RefreshOutcome, Refresher};
use crate::worker::{self, RunOptions};

/// How `demo` was asked to behave.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub generate: GenerateOptions,
    pub once: bool,
    pub run: RunOptions,
}

/// Runs the demo; the throwaway cluster, if any, is removed before returning.
pub async fn run(
    config: Arc<Config>,
    url: Option<DatabaseUrl>,
    options: DemoOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    db::with_server(url, |url| async move { demo(config, &url, options, shutdown).await }).await
}

async fn demo(
    config: Arc<Config>,
    url: &DatabaseUrl,
    options: DemoOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let pool = db::connect(url, &config.database, Patience::For(config.database.connect_timeout.0), &shutdown).await?;
    db::migrate(&pool, url, &config.database).await?;
    crate::aggregates::features::prepare(&pool).await;
    // Any raw data at all, not only events: a demo run with `--events 0`
    // loads leads, conversions and spend, and a second run must not add
    // them again.
    let existing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM marketing.events) OR EXISTS (SELECT 1 FROM marketing.leads)
             OR EXISTS (SELECT 1 FROM marketing.conversions) OR EXISTS (SELECT 1 FROM marketing.campaign_spend)",
    )
    .fetch_one(&pool)
    .await
    .map_err(|e| Error::database("checking the marketing tables", &e))?;
    if existing {
        tracing::info!("the marketing tables already have rows; not loading demo data");
    } else {
        // A long generation stops at the first Ctrl-C: its transaction is
        // abandoned with the connection and rolls back.
        tokio::select! {
            generated = generate(&pool, &config, &options.generate) => { generated?; }
            _ = shutdown.cancelled() => {
                tracing::info!("interrupted while generating demo data; nothing was loaded");
                return Ok(());
            }
        }
    }
    let today = Utc::now().date_naive();
    // Failures are logged; the report reads whatever exists.
    crate::maintenance::run(&pool, &config, today, false, &shutdown).await;

    let metrics = Arc::new(Metrics::new(&crate::refresh::policy::metric_series(&config)));
    let refresher = Refresher::new(pool.clone(), config.clone(), metrics, shutdown.clone());
    // Every enabled rollup, then the views over them, in dependency order.
    for aggregate in crate::refresh::policy::select(&config, &[])? {
        let report = match refresher.refresh(aggregate).await {
            Ok(report) => report,
            Err(crate::refresh::NotStarted::Interrupted) => return Ok(()),
            Err(_) => continue, // said in the log: disabled, or no sketches on this server
        };
        if report.outcome == RefreshOutcome::Failure {
            return Err(Error::runtime(format!("refreshing {}", aggregate.name), report.error.unwrap_or_default()));
        }
    }
    println!(
        "{}",
        campaign_report(&pool, &config).await.map_err(|e| Error::database("reading the campaign report", &e))?
    );
    let status = crate::status::collect(&pool, &config, Utc::now())
        .await
        .map_err(|e| Error::database("reading the aggregate status", &e))?;
    println!("{}", crate::status::freshness_table(&status));
    pool.close().await;
    if options.once {
        return Ok(());
    }
    println!(
        "The worker keeps the aggregates fresh; metrics at http://{}/metrics. Press Ctrl-C to stop.",
        options.run.metrics_addr
    );
    worker::run(config, url, options.run, shutdown).await
}
