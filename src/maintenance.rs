//! The maintenance pass: what the worker runs at start-up and on its
//! `[partitions] schedule`, and `tally partitions` and `demo` run once.
//! Partitions come first and know nothing else; then what depends on the
//! months they made: the invalidation triggers of new partitions, the index
//! sightings of `tally doctor`, and (in the worker) the partition metrics
//! and the pruning of the refresh history — each done here and nowhere else.

use chrono::NaiveDate;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::partitions::{MaintenanceReport, managed_tables};

/// Maintains every managed table as of `today` (a `dry_run` only plans),
/// then gives new partitions what depends on them.
pub async fn run(
    pool: &PgPool,
    config: &Config,
    today: NaiveDate,
    dry_run: bool,
    shutdown: &CancellationToken,
) -> Vec<MaintenanceReport> {
    let reports = crate::partitions::maintain(pool, config, today, dry_run, shutdown).await;
    if dry_run {
        return reports;
    }
    // New months of marketing.events need their TRUNCATE invalidation trigger.
    if let Err(e) = crate::aggregates::triggers::cover_new_partitions(pool, config).await {
        tracing::warn!(error = %crate::db::describe(&e), "could not add invalidation triggers to new partitions");
    }
    // Wherever maintenance runs, tally notes the indexes it has not seen:
    // `tally doctor` judges an index only over the time since.
    crate::doctor::audit::sightings::record_for_maintenance(pool).await;
    reports
}

/// The worker's pass: [`run`], each table's reading into the metrics
/// ([`record`]), and the refresh history older than `[refresh] history_days` pruned.
/// Failures are logged; actions are retried at the next pass.
pub async fn worker_pass(pool: &PgPool, config: &Config, metrics: &Metrics, shutdown: &CancellationToken) {
    let today = chrono::Utc::now().date_naive();
    let reports = run(pool, config, today, false, shutdown).await;
    record(metrics, config, &reports);
    match crate::refresh::history::prune(pool, config.refresh.history_days).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "pruned refresh history"),
        Err(e) => tracing::warn!(error = %crate::db::describe(&e), "could not prune refresh history"),
    }
}

/// Records each table's reading in the partition metrics; a managed table
/// without one gets its series at 0 (no partition tally can see: its alerts
/// fire, as they should), and a real reading is never overwritten by that.
pub fn record(metrics: &Metrics, config: &Config, reports: &[MaintenanceReport]) {
    for report in reports {
        if let Some(reading) = report.reading {
            metrics.record_partitions(&report.table, reading.partitions, reading.future_months, reading.default_rows);
        }
    }
    for table in managed_tables(config) {
        metrics.ensure_partition_series(&table.label());
    }
}
