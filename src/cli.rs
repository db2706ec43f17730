//! The command line (clap derive): commands, flags and their help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// tally keeps marketing analytics in PostgreSQL fast and fresh: monthly
/// event partitions, daily aggregates refreshed on schedule, Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "tally", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file; without one, built-in defaults serve.
    #[arg(long, global = true, env = "TALLY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker: migrate, ensure partitions, refresh aggregates on
    /// schedule, serve /metrics, /healthz and /readyz until SIGTERM/SIGINT.
    Run {
        /// Do not apply pending migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Create missing and future monthly partitions; print what was done.
    Partitions {
        /// Print what would be done and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Refresh all aggregates, or the named ones, now (same locking and
    /// history as the worker).
    Refresh {
        /// Aggregate names; all enabled aggregates when omitted.
        names: Vec<String>,
        /// When another tally process is refreshing an aggregate, wait this
        /// long for it to finish, then refresh; exit 1 if it is still busy.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = postgres_timeout)]
        wait: std::time::Duration,
    },
    /// Show freshness and history per aggregate, and partitions per table.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Load a generated marketing data set, refresh, print a campaign report
    /// and keep the worker running. Without DATABASE_URL, uses a throwaway
    /// PostgreSQL cluster that is removed on exit.
    Demo {
        /// Number of events to generate (at most 1,000,000,000).
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
        events: u64,
        /// Seed of the generator: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u32,
        /// Days of history the events spread over, ending now.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// Print the report and exit instead of running the worker.
        #[arg(long)]
        once: bool,
    },
    /// Load event documents (NDJSON, MongoDB Extended JSON, gzip or not) from
    /// FILE or stdin (`-`) into marketing.events; idempotent.
    Ingest {
        /// The file to read, or `-` for stdin.
        #[arg(value_name = "FILE|-")]
        file: String,
        /// Append rejected lines, with line number and reason, to this NDJSON
        /// file (never the input itself, `-` or a directory: those are refused).
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// Skip this many lines first (to resume an interrupted run).
        #[arg(long, default_value_t = 0)]
        skip_lines: u64,
        /// Exit 0 even when lines were rejected.
        #[arg(long)]
        allow_rejects: bool,
        /// Lines per batch; each batch commits whole.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        batch_rows: u64,
        /// Longer lines are rejected.
        #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(64..=(256 << 20)))]
        max_line_bytes: u64,
    },
    /// Measure refresh modes (incremental, CONCURRENTLY, plain) and the
    /// ingest overhead of incremental mode, in fresh databases on the
    /// DATABASE_URL server (or a throwaway cluster); print a Markdown report.
    Bench {
        /// Data sizes in events, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000000")]
        events: Vec<u64>,
        /// Days of history the events spread over.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(7..=3650))]
        days: u32,
        /// Seed of the data generator.
        #[arg(long, default_value_t = 42)]
        seed: u32,
        /// Measurements per figure (the median is reported).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
        repeat: u32,
        /// Rows per COPY for the trigger-overhead figure; 0 skips it.
        #[arg(long, default_value_t = 1_000_000)]
        copy_rows: u64,
        /// Rows for the ingest-vs-raw-COPY figure; 0 skips it.
        #[arg(long, default_value_t = 1_000_000)]
        ingest_rows: u64,
        /// Runs of each dashboard SQL query (p50/p95 reported); 0 skips them.
        #[arg(long, default_value_t = 50)]
        dashboard_runs: u32,
        /// Instead of the above: run the worker this long (e.g. 10m) under
        /// continuous ingest and refreshes every 3 s; report its memory,
        /// connections and refresh history.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        soak: Option<std::time::Duration>,
        /// Events generated before the soak starts.
        #[arg(long, default_value_t = 200_000)]
        soak_events: u64,
        /// Instead of the above: aggregates declared in the config over a
        /// foreign table (--events: its rows): one changed day incremental
        /// against the user's materialized view, the whole cycle of three,
        /// and what their triggers cost COPY and single-row writers.
        #[arg(long, conflicts_with = "soak")]
        declared: bool,
    },
    /// Query doctor: run a statement under EXPLAIN (ANALYZE, BUFFERS) in a
    /// transaction that is always rolled back, report the warning signs
    /// and the index, statistics or setting that fixes each.
    Explain {
        /// The statement (or use --file).
        #[arg(value_name = "SQL", conflicts_with_all = ["file", "audit"])]
        sql: Option<String>,
        /// Read the statement from this file, or `-` for stdin.
        #[arg(long, value_name = "FILE|-", conflicts_with = "audit")]
        file: Option<String>,
        /// Plan only: do not execute the statement.
        #[arg(long)]
        no_analyze: bool,
        /// Print JSON (the schema is in docs/query-doctor.md).
        #[arg(long)]
        json: bool,
        /// A setting for this statement only, e.g. --set work_mem=64MB (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        settings: Vec<String>,
        /// Cancel the statement after this long (e.g. 30s, 5m).
        #[arg(long, default_value = "60s", value_parser = postgres_timeout)]
        timeout: std::time::Duration,
        /// Suggest an index only if, created hypothetically (hypopg), it cuts
        /// the statement's estimated cost by at least this much (50%, or 0.5).
        #[arg(long, value_name = "PERCENT", default_value = "50%", value_parser = cost_cut)]
        min_cost_cut: f64,
        /// Audit the existing indexes instead (same as `tally doctor`).
        #[arg(long)]
        audit: bool,
        /// With --audit: as for `tally doctor` (default 7d).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        min_stats_age: Option<std::time::Duration>,
    },
    /// Index audit: unused, duplicate, prefix-redundant and invalid indexes,
    /// with the statement that removes or repairs each.
    Doctor {
        /// Print JSON (the schema is in docs/query-doctor.md).
        #[arg(long)]
        json: bool,
        /// Report an index unused only once its usage has been counted this
        /// long (e.g. 7d, 36h, 0s; at most 366d), both by PostgreSQL's
        /// statistics and since tally first saw the index: a shorter watch
        /// has not yet seen the weekly or monthly queries it may serve.
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = duration)]
        min_stats_age: std::time::Duration,
        /// Instead of the audit: the smallest set of indexes serving the
        /// statements that take the most time (pg_stat_statements), verified
        /// with hypopg and weighed against the tables' writes.
        #[arg(long)]
        workload: bool,
        /// With --workload: how many statements to read, by total time.
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100), requires = "workload")]
        top: u32,
        /// With --workload: the cut of a statement's estimated cost that counts as serving it.
        #[arg(long, value_name = "PERCENT", default_value = "50%", value_parser = cost_cut, requires = "workload")]
        min_cost_cut: f64,
    },
    /// Check the worker's /healthz (for container HEALTHCHECK); exit 0 if healthy.
    Healthcheck,
}

/// A duration flag (`30s`, `5m`), at most [`crate::config::MAX_DURATION`].
fn duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_bounded(text, crate::config::MAX_DURATION)
}

/// A duration flag that becomes a PostgreSQL timeout, at most its limit.
/// 0 means no limit there, so a nonzero value under 1 ms is refused too.
fn postgres_timeout(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_bounded(text, crate::config::MAX_PG_TIMEOUT).and_then(crate::config::check_pg_timeout)
}

/// `--min-cost-cut`: `50%` or `0.5`, above 0 and below 100%.
fn cost_cut(text: &str) -> Result<f64, String> {
    let value = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a share of the cost: write a percentage such as 50% (or 0.5)"))?;
    if !(value > 0.0 && value < 1.0) {
        return Err(format!("`{text}` is out of range: the cut must be above 0% and below 100% (for example 50%)"));
    }
    Ok(value)
}
