//! Wiring only: tokio-cron-scheduler jobs that hand work to the refresher
//! and to partition maintenance. A job never runs work itself; it spawns it
//! into the shared [`TaskTracker`] so shutdown can wait for it, and the
//! refresher's running set makes an overlapping run a counted skip.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aggregates::Aggregate;
use crate::config::{Config, Schedule};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::refresh::Refresher;

/// Everything the jobs need, cloned into each.
#[derive(Clone)]
pub struct Jobs {
    pub refresher: Arc<Refresher>,
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

/// Builds and starts the scheduler: one job per enabled aggregate, partition
/// maintenance, a heartbeat for `/healthz`, and every 10 s a reading of the
/// invalidation backlog and the ingest totals.
pub async fn start(jobs: Jobs) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    for aggregate in jobs.config.registry().iter().copied() {
        let Some(settings) = jobs.config.aggregate(aggregate.name) else { continue };
        if !settings.enabled {
            tracing::info!(aggregate = aggregate.name, "disabled; not scheduled");
            continue;
        }
        let job = {
            let jobs = jobs.clone();
            make_job(&settings.schedule, move || jobs.spawn_refresh(aggregate))?
        };
        scheduler.add(job).await?;
        tracing::info!(aggregate = aggregate.name, schedule = %settings.schedule.describe(), "scheduled");
    }
    let maintenance = {
        let schedule = jobs.config.maintenance_schedule.clone();
        let jobs = jobs.clone();
        make_job(&schedule, move || jobs.spawn_maintenance())?
    };
    scheduler.add(maintenance).await?;
    let heartbeat = {
        let health = jobs.health.clone();
        Job::new_repeated_async(Duration::from_secs(5), move |_, _| {
            health.beat();
            Box::pin(async {})
        })?
    };
    scheduler.add(heartbeat).await?;
    let readings = {
        let jobs = jobs.clone();
        Job::new_repeated_async(Duration::from_secs(10), move |_, _| {
            jobs.spawn_readings();
            Box::pin(async {})
        })?
    };
    scheduler.add(readings).await?;
    scheduler.start().await?;
    jobs.health.running();
    Ok(scheduler)
}

impl Jobs {
    /// Starts a refresh of `aggregate` in the tracker, unless shutting down.
    pub fn spawn_refresh(&self, aggregate: &'static Aggregate) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let refresher = self.refresher.clone();
        self.tracker.spawn(async move {
            // Not started (disabled, no sketches, shutdown): the refresher logged why.
            let _ = refresher.refresh(aggregate).await;
        });
    }

    /// Reads what other processes changed into the metrics: the incremental
    /// backlog and the ingest totals.
    pub fn spawn_readings(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let jobs = self.clone();
        self.tracker.spawn(async move {
            crate::readings::take(&jobs.pool, &jobs.config, &jobs.refresher, &jobs.metrics).await;
        });
    }

    /// Starts partition maintenance and history pruning in the tracker.
    pub fn spawn_maintenance(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let jobs = self.clone();
        self.tracker.spawn(async move {
            // Each action logs itself; failures are retried at the next run.
            crate::maintenance::worker_pass(&jobs.pool, &jobs.config, &jobs.metrics, &jobs.shutdown).await;
        });
    }
}

fn make_job(schedule: &Schedule, work: impl Fn() + Send + Sync + 'static) -> Result<Job, JobSchedulerError> {
    let work = Arc::new(work);
    let run = move |_, _| {
        work();
        Box::pin(async {}) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    match schedule {
        Schedule::Cron(cron) => Job::new_async(cron.pattern.to_string(), run),
        Schedule::Every(interval) => Job::new_repeated_async(*interval, run),
    }
}
