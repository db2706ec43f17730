//! `tally run`: the long-lived worker. Connects (retrying while PostgreSQL is
//! down), migrates, ensures partitions, restores freshness from history,
//! refreshes what is due, then lets the scheduler run until SIGTERM/SIGINT,
//! and shuts down gracefully.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aggregates;
use crate::config::Config;
use crate::db::{self, DatabaseUrl, DbError, Patience};
use crate::error::Error;
use crate::http::{self, AppState, Health, MetricsAddr, Readiness};
use crate::metrics::Metrics;
use crate::refresh::{Refresher, history};
use crate::scheduler::{self, Jobs};

/// How `run` was asked to behave.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub migrate: bool,
    pub metrics_addr: MetricsAddr,
}

/// Runs the worker until `shutdown` is cancelled. Returns `Ok` after a
/// graceful stop, including a stop requested while still connecting.
pub async fn run(
    config: Arc<Config>,
    url: &DatabaseUrl,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new(&crate::refresh::policy::metric_series(&config)));
    for aggregate in config.registry() {
        let interval =
            config.aggregate(aggregate.name).filter(|s| s.enabled).and_then(|s| s.schedule.interval(Utc::now()));
        if let Some(interval) = interval {
            metrics.set_refresh_interval(aggregate.name, interval);
        }
    }
    let health = Arc::new(Health::default());
    let readiness = Arc::new(Readiness::default());
    let state = AppState { metrics: metrics.clone(), health: health.clone(), readiness: readiness.clone() };
    let server = http::serve(&options.metrics_addr, state, shutdown.clone()).await.map_err(|e| {
        Error::runtime(
            format!("serving metrics on {}", options.metrics_addr),
            format!("{e}; set TALLY_METRICS_ADDR to a free address"),
        )
    })?;

    let on_failure = |reason: &str| readiness.connect_failed(reason);
    let pool = match db::connect_reporting(url, &config.database, Patience::Forever, &shutdown, &on_failure).await {
        Ok(pool) => pool,
        Err(DbError::Interrupted { .. }) => {
            let _ = server.await;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let refresher = Arc::new(Refresher::new(pool.clone(), config.clone(), metrics.clone(), shutdown.clone()));
    start_up(&pool, url, &config, &options, &refresher, &metrics, &readiness, &shutdown).await?;

    let tracker = TaskTracker::new();
    let jobs = Jobs {
        refresher: refresher.clone(),
        pool: pool.clone(),
        config: config.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
        tracker: tracker.clone(),
        shutdown: shutdown.clone(),
    };
    refresh_due(&jobs).await;
    let mut scheduler =
        scheduler::start(jobs).await.map_err(|e| Error::runtime("starting the scheduler", e.to_string()))?;
    readiness.ready(pool.clone());
    tracing::info!("worker running");

    shutdown.cancelled().await;
    health.stopping();
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "scheduler did not stop cleanly");
    }
    tracker.close();
    let grace = config.refresh.shutdown_grace.0;
    let refreshing = refresher.running_refreshes();
    if !tracker.is_empty() {
        tracing::info!(
            refreshes = refreshing,
            grace = %humantime::format_duration(grace),
            "waiting for {} to finish (press Ctrl-C again to stop at once)",
            match refreshing {
                0 => "running maintenance".to_string(),
                1 => "1 running refresh".to_string(),
                n => format!("{n} running refreshes"),
            }
        );
    }
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        // Cancel whatever runs, again each second: a refresh between retries
        // or just past its lock wait may start a new statement.
        let cancelled = async {
            loop {
                refresher.cancel_running().await;
                if tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await.is_ok() {
                    break;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), cancelled).await.is_err() {
            tracing::error!("refreshes did not stop within 10s of being cancelled; exiting anyway");
        }
    }
    pool.close().await;
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// The start-up sequence, each step shown on `/readyz` while it runs:
/// migrations, invalidation triggers, partitions, history pruning, and the
/// metrics read back (freshness from history, the incremental backlog, the
/// ingest totals), so that the first ready scrape has every series.
#[allow(clippy::too_many_arguments)]
async fn start_up(
    pool: &sqlx::PgPool,
    url: &DatabaseUrl,
    config: &Config,
    options: &RunOptions,
    refresher: &Refresher,
    metrics: &Metrics,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    if options.migrate {
        readiness.starting("applying migrations");
        db::migrate(pool, url, &config.database).await?;
    }
    crate::aggregates::features::prepare(pool).await;
    crate::aggregates::declared::check_days(pool, config).await.map_err(Error::Usage)?;
    warn_about_retention(config);
    readiness.starting("maintaining partitions");
    // Install, update or remove the invalidation triggers of incremental mode.
    if let Err(e) = crate::aggregates::triggers::ensure(pool, config).await {
        tracing::error!(error = %e, "could not set up the invalidation triggers; incremental refreshes will retry");
    }
    // Failures are logged per action and retried on the maintenance schedule.
    crate::maintenance::worker_pass(pool, config, metrics, shutdown).await;
    readiness.starting("reading freshness back from the refresh history");
    if let Err(e) = refresher.restore_freshness().await {
        tracing::warn!(error = %db::describe(&e), "could not read refresh history; freshness starts unknown");
    }
    for aggregate in config.registry() {
        if config.aggregate(aggregate.name).is_some_and(|s| s.enabled) {
            metrics.ensure_aggregate_series(aggregate.name);
        }
    }
    crate::readings::take(pool, config, refresher, metrics).await;
    Ok(())
}

/// Retention removes raw months; an aggregate rebuilt from raw data in
/// `concurrently` mode loses those days at its next refresh. Said once, at start.
fn warn_about_retention(config: &Config) {
    let Some(months) = config.partitions.retention_months else { return };
    let tables: Vec<String> = crate::partitions::managed_tables(config).iter().map(|t| t.label()).collect();
    for aggregate in config.registry() {
        let Some(settings) = config.aggregate(aggregate.name).filter(|s| s.enabled) else { continue };
        let reads = aggregate.sources().into_iter().find(|source| tables.iter().any(|t| t == source));
        if let (Some(source), crate::config::Mode::Concurrently) = (reads, settings.mode) {
            tracing::warn!(
                aggregate = aggregate.name,
                source,
                retention_months = months,
                "retention is on and this aggregate is recomputed from {source} in concurrently mode: days whose raw \
                 months are retired disappear from it at its next refresh"
            );
        }
    }
}

/// At start-up, refreshes (in dependency order, in the background) every
/// enabled aggregate that was never built or missed a scheduled run.
async fn refresh_due(jobs: &Jobs) {
    let now = Utc::now();
    let summaries = history::summaries(&jobs.pool, &jobs.config.names()).await.unwrap_or_default();
    let due: Vec<&'static aggregates::Aggregate> = jobs
        .config
        .registry()
        .iter()
        .copied()
        .filter(|aggregate| {
            let Some(settings) = jobs.config.aggregate(aggregate.name).filter(|s| s.enabled) else {
                return false;
            };
            let last = summaries.iter().find(|s| s.aggregate == aggregate.name).and_then(|s| s.last_success_started);
            settings.schedule.is_due(now, last)
        })
        .collect();
    if due.is_empty() {
        return;
    }
    tracing::info!(aggregates = ?due.iter().map(|a| a.name).collect::<Vec<_>>(), "refreshing aggregates that are due");
    let refresher = jobs.refresher.clone();
    jobs.tracker.spawn(async move {
        for aggregate in due {
            // Not started (disabled, no sketches, shutdown): the refresher logged why.
            let _ = refresher.refresh(aggregate).await;
        }
    });
}
