//! Prometheus metrics (SPEC §6). One [`Metrics`] value is built at start-up,
//! shared by `Arc`, and owns its own registry: no global statics. Names
//! follow `tally_<noun>_<unit>`; labels never carry campaign, source or user
//! values, so cardinality is bounded by the number of aggregates and tables.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets of `tally_refresh_duration_seconds`: 50 ms to 30 min.
pub const REFRESH_BUCKETS: &[f64] =
    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// Typed handles to every metric tally exports. Handles are cheap to use
/// from any task; the staleness clock is behind a mutex held only to read
/// or write one timestamp.
pub struct Metrics {
    registry: Registry,
    refresh_duration_seconds: HistogramVec,
    refreshes_total: IntCounterVec,
    refresh_failures_total: IntCounterVec,
    refresh_last_success_timestamp_seconds: GaugeVec,
    aggregate_staleness_seconds: GaugeVec,
    aggregate_rows: IntGaugeVec,
    refresh_interval_seconds: GaugeVec,
    invalidated_days: IntGaugeVec,
    partitions: IntGaugeVec,
    partition_future_months: IntGaugeVec,
    default_partition_rows: IntGaugeVec,
    ingest_rows_total: IntCounterVec,
    /// Start of the last successful refresh, per aggregate: the instant the
    /// aggregate's data is as fresh as. Staleness is computed from it at scrape.
    fresh_as_of: Mutex<HashMap<String, DateTime<Utc>>>,
    /// The ingest totals last read from `tally.ingest_runs` (loaded, duplicate, rejected).
    ingest_seen: Mutex<[i64; 3]>,
    /// Aggregates and tables whose gauges hold a real reading, so that
    /// filling in missing series never overwrites one.
    recorded: Mutex<HashSet<String>>,
}

/// The outcomes `tally_refreshes_total` counts.
pub const REFRESH_OUTCOMES: &[&str] = &["success", "failure", "skipped_running", "locked_elsewhere"];

impl Metrics {
    /// Registers every metric. `aggregates` are the enabled aggregates, whose
    /// series are created at zero so rates and alerts work from the first scrape.
    pub fn new(aggregates: &[(&str, &str)]) -> Metrics {
        let registry = Registry::new();
        let metrics = Metrics {
            refresh_duration_seconds: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("tally_refresh_duration_seconds", "Duration of successful aggregate refreshes.")
                        .buckets(REFRESH_BUCKETS.to_vec()),
                    &["aggregate", "mode"],
                ),
            ),
            refreshes_total: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("tally_refreshes_total", "Refresh attempts by outcome."),
                    &["aggregate", "outcome"],
                ),
            ),
            refresh_failures_total: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("tally_refresh_failures_total", "Refreshes that failed after all attempts."),
                    &["aggregate"],
                ),
            ),
            refresh_last_success_timestamp_seconds: register(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "tally_refresh_last_success_timestamp_seconds",
                        "Unix time at which the last successful refresh finished.",
                    ),
                    &["aggregate"],
                ),
            ),
            aggregate_staleness_seconds: register(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "tally_aggregate_staleness_seconds",
                        "Seconds since the start of the last successful refresh (+Inf if none).",
                    ),
                    &["aggregate"],
                ),
            ),
            aggregate_rows: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("tally_aggregate_rows", "Rows in the aggregate after its last successful refresh."),
                    &["aggregate"],
                ),
            ),
            refresh_interval_seconds: register(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "tally_refresh_interval_seconds",
                        "Seconds between two scheduled refreshes of the aggregate (what staleness alerts compare against).",
                    ),
                    &["aggregate"],
                ),
            ),
            invalidated_days: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("tally_invalidated_days", "Days waiting to be recomputed (incremental mode)."),
                    &["aggregate"],
                ),
            ),
            partitions: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("tally_partitions", "Monthly partitions attached to the table."),
                    &["table"],
                ),
            ),
            partition_future_months: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("tally_partition_future_months", "Monthly partitions after the current month."),
                    &["table"],
                ),
            ),
            default_partition_rows: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("tally_default_partition_rows", "Rows in the table's default partition."),
                    &["table"],
                ),
            ),
            ingest_rows_total: register(
                &registry,
                IntCounterVec::new(Opts::new("tally_ingest_rows_total", "Ingested lines by outcome."), &["outcome"]),
            ),
            fresh_as_of: Mutex::new(HashMap::new()),
            ingest_seen: Mutex::new([0; 3]),
            recorded: Mutex::new(HashSet::new()),
            registry,
        };
        let build_info = register(
            &metrics.registry,
            IntGaugeVec::new(
                Opts::new("tally_build_info", "Always 1; the version label says which tally runs."),
                &["version"],
            ),
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for outcome in ["loaded", "duplicate", "rejected"] {
            metrics.ingest_rows_total.with_label_values(&[outcome]);
        }
        for (aggregate, mode) in aggregates {
            for outcome in REFRESH_OUTCOMES {
                metrics.refreshes_total.with_label_values(&[*aggregate, *outcome]);
            }
            metrics.refresh_failures_total.with_label_values(&[*aggregate]);
            metrics.refresh_duration_seconds.with_label_values(&[*aggregate, *mode]);
            if *mode == "incremental" {
                // Read from tally.invalidations at start-up and every 10 s;
                // present even if that reading fails.
                metrics.invalidated_days.with_label_values(&[*aggregate]).set(0);
            }
            metrics
                .fresh_as_of
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(aggregate.to_string())
                .or_insert(DateTime::<Utc>::MIN_UTC);
        }
        metrics
    }

    /// Records a successful refresh that started at `started` and finished at `finished`.
    pub fn record_success(&self, aggregate: &str, started: DateTime<Utc>, finished: DateTime<Utc>, rows: i64) {
        self.mark_recorded(aggregate);
        self.refresh_last_success_timestamp_seconds
            .with_label_values(&[aggregate])
            .set(finished.timestamp_millis() as f64 / 1000.0);
        self.aggregate_rows.with_label_values(&[aggregate]).set(rows);
        let mut fresh = self.fresh_as_of.lock().unwrap_or_else(|p| p.into_inner());
        let entry = fresh.entry(aggregate.to_string()).or_insert(started);
        *entry = (*entry).max(started);
    }

    /// Counts one refresh by outcome (`tally_refreshes_total`), and for a
    /// success its duration under its mode, for a failure
    /// `tally_refresh_failures_total`.
    pub fn record_refresh(&self, aggregate: &str, mode: &str, outcome: &str, duration: Duration) {
        self.refreshes_total.with_label_values(&[aggregate, outcome]).inc();
        match outcome {
            "success" => {
                self.refresh_duration_seconds.with_label_values(&[aggregate, mode]).observe(duration.as_secs_f64())
            }
            "failure" => self.refresh_failures_total.with_label_values(&[aggregate]).inc(),
            _ => {}
        }
    }

    /// The time between two scheduled refreshes of `aggregate` (what the
    /// staleness alert compares against).
    pub fn set_refresh_interval(&self, aggregate: &str, interval: Duration) {
        self.refresh_interval_seconds.with_label_values(&[aggregate]).set(interval.as_secs_f64());
    }

    /// Days waiting to be rewritten for an incremental `aggregate`.
    pub fn set_backlog(&self, aggregate: &str, days: i64) {
        self.invalidated_days.with_label_values(&[aggregate]).set(days);
    }

    /// Gives an aggregate that never had a successful refresh its last-success
    /// (0, "never") and rows (0) series, so they exist from the worker's
    /// first ready scrape; a real reading is never overwritten.
    pub fn ensure_aggregate_series(&self, aggregate: &str) {
        if self.mark_recorded(aggregate) {
            self.refresh_last_success_timestamp_seconds.with_label_values(&[aggregate]).set(0.0);
            self.aggregate_rows.with_label_values(&[aggregate]).set(0);
        }
    }

    /// Drops an aggregate's freshness series (staleness, schedule interval,
    /// last success, rows, backlog): it cannot be built on this server, and
    /// a staleness of +Inf would alert for it forever.
    pub fn forget_aggregate(&self, aggregate: &str) {
        self.fresh_as_of.lock().unwrap_or_else(|p| p.into_inner()).remove(aggregate);
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).remove(aggregate);
        // Absent series are fine: removing one that does not exist is a no-op here.
        let _ = self.aggregate_staleness_seconds.remove_label_values(&[aggregate]);
        let _ = self.refresh_interval_seconds.remove_label_values(&[aggregate]);
        let _ = self.refresh_last_success_timestamp_seconds.remove_label_values(&[aggregate]);
        let _ = self.aggregate_rows.remove_label_values(&[aggregate]);
        let _ = self.invalidated_days.remove_label_values(&[aggregate]);
    }

    /// Records a reading of a partitioned table.
    pub fn record_partitions(&self, table: &str, partitions: i64, future_months: i64, default_rows: i64) {
        self.mark_recorded(table);
        self.partitions.with_label_values(&[table]).set(partitions);
        self.partition_future_months.with_label_values(&[table]).set(future_months);
        self.default_partition_rows.with_label_values(&[table]).set(default_rows);
    }

    /// Gives a table that could not be read its partition series, at 0 (no
    /// partition tally can see: the alerts on them fire, as they should);
    /// a real reading is never overwritten.
    pub fn ensure_partition_series(&self, table: &str) {
        if self.mark_recorded(table) {
            self.record_partitions(table, 0, 0, 0);
        }
    }

    /// Marks `name` as having a real reading; `true` if it had none before.
    fn mark_recorded(&self, name: &str) -> bool {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string())
    }

    /// Advances `tally_ingest_rows_total` to the totals of all ingest runs
    /// (they only grow; a smaller reading is ignored).
    pub fn observe_ingest_totals(&self, loaded: i64, duplicate: i64, rejected: i64) {
        let mut seen = self.ingest_seen.lock().unwrap_or_else(|p| p.into_inner());
        for (index, (outcome, total)) in
            [("loaded", loaded), ("duplicate", duplicate), ("rejected", rejected)].into_iter().enumerate()
        {
            if total > seen[index] {
                self.ingest_rows_total.with_label_values(&[outcome]).inc_by((total - seen[index]) as u64);
                seen[index] = total;
            }
        }
    }

    /// The Prometheus text exposition, with staleness computed for `now`.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        {
            let fresh = self.fresh_as_of.lock().unwrap_or_else(|p| p.into_inner());
            for (aggregate, as_of) in fresh.iter() {
                let staleness = if *as_of == DateTime::<Utc>::MIN_UTC {
                    f64::INFINITY
                } else {
                    ((now - *as_of).num_milliseconds() as f64 / 1000.0).max(0.0)
                };
                self.aggregate_staleness_seconds.with_label_values(&[aggregate.as_str()]).set(staleness);
            }
        }
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        // Encoding into a Vec cannot fail for well-formed families.
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        exposition_infinities(&String::from_utf8_lossy(&buffer))
    }
}

/// The text format spells infinite values `+Inf` and `-Inf`; the encoder
/// writes Rust's `inf`, which Prometheus happens to parse but other readers
/// (and people comparing with the docs) do not.
fn exposition_infinities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let fixed = match line.rsplit_once(' ') {
            Some((series, "inf")) if !line.starts_with('#') => format!("{series} +Inf"),
            Some((series, "-inf")) if !line.starts_with('#') => format!("{series} -Inf"),
            _ => line.to_string(),
        };
        out.push_str(&fixed);
        out.push('\n');
    }
    out
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: prometheus::Result<C>,
) -> C {
    // Names and labels are constants of this file; a failure here is a bug
    // caught by the first test that builds Metrics.
    let collector = collector.unwrap_or_else(|e| panic!("invalid metric definition: {e}"));
    registry.register(Box::new(collector.clone())).unwrap_or_else(|e| panic!("duplicate metric registration: {e}"));
    collector
}

#[cfg(test)]
mod tests;
