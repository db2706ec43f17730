//! Refreshing aggregates with the guarantees the worker and `tally refresh`
//! share: never two refreshes of one aggregate at once (skipped in this
//! process, `locked_elsewhere` across replicas), at most
//! `[refresh] max_concurrent` at a time, transient failures retried with
//! backoff, and every attempt logged, counted and written to
//! `tally.refresh_runs` in one place ([`Refresher::observe`]).

pub mod attempt;
pub mod history;
pub mod policy;
pub mod render;

pub use policy::NotStarted;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::aggregates::Aggregate;
use crate::aggregates::RefreshKind;
use crate::config::Config;
use crate::metrics::Metrics;
use attempt::{ActiveBackends, Attempt};

/// How a refresh ended (the `outcome` label and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    Success,
    Failure,
    /// This process was still refreshing the aggregate; the run was skipped.
    SkippedRunning,
    /// Another tally process holds the aggregate's lock; the run was skipped.
    LockedElsewhere,
}

impl RefreshOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Success => "success",
            RefreshOutcome::Failure => "failure",
            RefreshOutcome::SkippedRunning => "skipped_running",
            RefreshOutcome::LockedElsewhere => "locked_elsewhere",
        }
    }
}

/// The result of one refresh, as recorded in history.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    pub aggregate: &'static str,
    /// `concurrently` (or `incremental`) for rollups, `view` for views.
    pub mode: &'static str,
    pub outcome: RefreshOutcome,
    pub kind: Option<RefreshKind>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows: Option<i64>,
    /// Days rewritten by an incremental refresh.
    pub days: Option<i64>,
    pub attempts: u32,
    pub error: Option<String>,
    /// `locked_elsewhere`: the session that held the lock, when known.
    pub holder: Option<String>,
}

/// Runs refreshes. One per process, shared by `Arc` between scheduler jobs,
/// the `refresh` command and shutdown. The running set and the semaphore
/// are what make "never twice at once" and `max_concurrent` hold.
pub struct Refresher {
    pool: PgPool,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    running: Mutex<HashSet<&'static str>>,
    /// Aggregates found unable to exist on this server (no hll), each said once.
    unavailable: Mutex<HashSet<&'static str>>,
    permits: Semaphore,
    backends: ActiveBackends,
    shutdown: CancellationToken,
    worker: String,
    /// How long a refresh waits for another process's refresh of the same
    /// aggregate: zero for the worker (it yields, `locked_elsewhere`),
    /// `--wait` for `tally refresh`.
    lock_wait: Duration,
}

impl Refresher {
    pub fn new(pool: PgPool, config: Arc<Config>, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Refresher {
        let permits = Semaphore::new(config.refresh.max_concurrent as usize);
        let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        Refresher {
            pool,
            config,
            metrics,
            running: Mutex::new(HashSet::new()),
            unavailable: Mutex::new(HashSet::new()),
            permits,
            backends: ActiveBackends::default(),
            shutdown,
            worker: format!("{host}:{}", std::process::id()),
            lock_wait: Duration::ZERO,
        }
    }

    /// The same refresher, waiting up to `wait` for a refresh of the same
    /// aggregate by another process to end instead of yielding at once.
    pub fn waiting_for_locks(mut self, wait: Duration) -> Refresher {
        self.lock_wait = wait;
        self
    }

    /// Refreshes one aggregate now, unless this process is already refreshing
    /// it (a `skipped_running` report). [`NotStarted`] says why it was not
    /// started; nothing is recorded then.
    pub async fn refresh(&self, aggregate: &'static Aggregate) -> Result<RefreshReport, NotStarted> {
        if !policy::is_enabled(&self.config, aggregate) {
            tracing::warn!(aggregate = aggregate.name, "disabled in the configuration; not refreshed");
            return Err(NotStarted::Disabled);
        }
        if !self.has_features(aggregate).await {
            return Err(NotStarted::NeedsSketches);
        }
        let mode = match self.config.aggregate(aggregate.name) {
            Some(settings) => settings.mode.as_str(),
            None => "view",
        };
        let started_at = Utc::now();
        let Some(_running) = RunningGuard::start(&self.running, aggregate.name) else {
            let report = RefreshReport {
                aggregate: aggregate.name,
                mode,
                outcome: RefreshOutcome::SkippedRunning,
                kind: None,
                started_at,
                finished_at: started_at,
                rows: None,
                days: None,
                attempts: 0,
                error: None,
                holder: None,
            };
            self.observe(&report).await;
            return Ok(report);
        };
        let _permit = tokio::select! {
            // The semaphore is never closed, so acquire only fails if it were.
            permit = self.permits.acquire() => permit.ok(),
            _ = self.shutdown.cancelled() => None,
        };
        if self.shutdown.is_cancelled() {
            tracing::info!(aggregate = aggregate.name, "shutting down; refresh not started");
            return Err(NotStarted::Interrupted);
        }
        let started_at = Utc::now();
        let (result, attempts) = self.attempt_with_retries(aggregate).await;
        let mut report = RefreshReport {
            aggregate: aggregate.name,
            mode,
            outcome: RefreshOutcome::Success,
            kind: None,
            started_at,
            finished_at: Utc::now(),
            rows: None,
            days: None,
            attempts,
            error: None,
            holder: None,
        };
        match result {
            Ok(Attempt::Refreshed { kind, rows, days }) => {
                report.kind = Some(kind);
                report.rows = Some(rows);
                report.days = days;
            }
            Ok(Attempt::LockedElsewhere { holder }) => {
                report.outcome = RefreshOutcome::LockedElsewhere;
                report.holder = holder;
            }
            Err(error) => {
                report.outcome = RefreshOutcome::Failure;
                report.error = Some(error);
            }
        }
        self.observe(&report).await;
        Ok(report)
    }

    /// Whether the server offers what `aggregate` reads (visitor sketches).
    /// The first time it does not, this is logged with the fix and the
    /// aggregate's freshness series are dropped, so that no staleness alert
    /// fires for an aggregate that cannot exist. When the server cannot be
    /// asked, the refresh goes ahead and reports what fails.
    async fn has_features(&self, aggregate: &'static Aggregate) -> bool {
        if !aggregate.needs_sketches {
            return true;
        }
        let detected = match self.pool.acquire().await {
            Ok(mut conn) => crate::aggregates::Features::detect(&mut conn).await,
            Err(e) => Err(e),
        };
        let Ok(features) = detected else { return true };
        let mut unavailable = self.unavailable.lock().unwrap_or_else(|p| p.into_inner());
        if features.sketches {
            unavailable.remove(aggregate.name);
            return true;
        }
        if unavailable.insert(aggregate.name) {
            tracing::warn!(
                aggregate = aggregate.name,
                "not built: it reads visitor sketches and the server has none; to build it, {}",
                crate::aggregates::features::SKETCHES_HINT
            );
            self.metrics.forget_aggregate(aggregate.name);
        }
        false
    }

    /// Cancels, with `pg_cancel_backend`, every refresh running now; their
    /// transactions roll back and the aggregates keep their last contents.
    pub async fn cancel_running(&self) {
        for (aggregate, pid) in self.backends.pids() {
            tracing::warn!(aggregate, pid, "shutdown grace is over; cancelling the refresh");
            let cancelled =
                sqlx::query_scalar::<_, bool>("SELECT pg_cancel_backend($1)").bind(pid).fetch_one(&self.pool).await;
            if let Err(e) = cancelled {
                tracing::error!(aggregate, pid, error = %crate::db::describe(&e), "could not cancel the refresh");
            }
        }
    }

    async fn attempt_with_retries(&self, aggregate: &'static Aggregate) -> (Result<Attempt, String>, u32) {
        let retried = crate::db::with_retries(aggregate.name, self.config.refresh.max_attempts, &self.shutdown, || {
            attempt::run_bounded(&self.pool, aggregate, &self.config, &self.backends, self.lock_wait)
        })
        .await;
        (retried.result.map_err(|e| e.to_string()), retried.attempts)
    }

    /// Logs, counts and records one report: the single place where a
    /// refresh becomes visible, so logs, metrics and history agree.
    async fn observe(&self, report: &RefreshReport) {
        let aggregate = report.aggregate;
        let duration = (report.finished_at - report.started_at).to_std().unwrap_or_default();
        self.metrics.record_refresh(aggregate, report.mode, report.outcome.as_str(), duration);
        match report.outcome {
            RefreshOutcome::Success => {
                self.metrics.record_success(aggregate, report.started_at, report.finished_at, report.rows.unwrap_or(0));
                tracing::info!(aggregate, kind = report.kind.map_or("", |k| k.as_str()), rows = report.rows, days = report.days, duration = ?duration, attempts = report.attempts, "refreshed");
            }
            RefreshOutcome::Failure => {
                tracing::error!(
                    aggregate,
                    error = report.error.as_deref().unwrap_or(""),
                    attempts = report.attempts,
                    "refresh failed"
                );
            }
            RefreshOutcome::SkippedRunning => {
                tracing::warn!(aggregate, "previous refresh still running; skipped this run");
            }
            RefreshOutcome::LockedElsewhere => {
                let holder = report.holder.as_deref().unwrap_or("unknown");
                match self.lock_wait.is_zero() {
                    true => {
                        tracing::info!(aggregate, holder, "another tally process is refreshing this aggregate; skipped")
                    }
                    false => tracing::warn!(
                        aggregate,
                        holder,
                        wait = %humantime::format_duration(self.lock_wait),
                        "another tally process held this aggregate's refresh lock for the whole wait; not refreshed"
                    ),
                }
            }
        }
        if let Err(e) = history::record(&self.pool, report, &self.worker).await {
            tracing::warn!(aggregate, error = %crate::db::describe(&e), "could not write refresh history");
        }
        if report.mode == "incremental" {
            self.update_backlog().await;
        }
    }

    /// Reads the last success of each enabled aggregate back from history
    /// into the metrics, so freshness survives a restart. Disabled ones and
    /// views (which this process does not refresh on their own) get no
    /// series: a staleness frozen at some old one-shot refresh would only
    /// grow and alert.
    pub async fn restore_freshness(&self) -> Result<(), sqlx::Error> {
        for last in history::last_successes(&self.pool).await? {
            let enabled = self.config.aggregate(&last.aggregate).is_some_and(|s| s.enabled);
            if let Some(aggregate) = self.config.find(&last.aggregate).filter(|_| enabled) {
                self.metrics.record_success(aggregate.name, last.started_at, last.finished_at, last.rows.unwrap_or(0));
            }
        }
        Ok(())
    }

    /// Sets `tally_invalidated_days` from the marks waiting in `tally.invalidations`.
    pub async fn update_backlog(&self) {
        match crate::aggregates::incremental::backlog(&self.pool).await {
            Ok(backlog) => {
                for aggregate in self.config.registry() {
                    if self.config.aggregate(aggregate.name).is_some_and(|s| s.mode == crate::config::Mode::Incremental)
                    {
                        let days = backlog.iter().find(|(name, _)| name == aggregate.name).map_or(0, |(_, d)| *d);
                        self.metrics.set_backlog(aggregate.name, days);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %crate::db::describe(&e), "could not read the invalidation backlog"),
        }
    }

    /// How many refreshes have a database session right now.
    pub fn running_refreshes(&self) -> usize {
        self.backends.pids().len()
    }

    /// Whether this process is refreshing the aggregate right now.
    pub fn is_running(&self, aggregate: &str) -> bool {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).contains(aggregate)
    }
}

/// Membership in the running set for as long as it lives.
struct RunningGuard<'a> {
    set: &'a Mutex<HashSet<&'static str>>,
    name: &'static str,
}

impl<'a> RunningGuard<'a> {
    fn start(set: &'a Mutex<HashSet<&'static str>>, name: &'static str) -> Option<RunningGuard<'a>> {
        // Not `then_some`: it would build (and drop) a guard even when the
        // name is already present, removing the other refresh's marker.
        let inserted = set.lock().unwrap_or_else(|p| p.into_inner()).insert(name);
        inserted.then(|| RunningGuard { set, name })
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(self.name);
    }
}
