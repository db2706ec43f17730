//! The end of the soak: the aggregates compared with their definitions, and
//! the Markdown report.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::sampling::Sample;
use super::{REFRESH_EVERY, SoakOptions, modes};
use crate::aggregates::{self, Kind};
use crate::config::Config;
use crate::error::Error;

/// Refreshes once more (the last ingest may be newer than the last refresh),
/// then counts rows that differ from a computation from scratch, per aggregate.
pub(super) async fn verify(pool: &PgPool, config: &Arc<Config>) -> Result<Vec<(&'static str, i64)>, Error> {
    let metrics = Arc::new(crate::metrics::Metrics::new(&crate::refresh::policy::metric_series(config)));
    let refresher = crate::refresh::Refresher::new(pool.clone(), config.clone(), metrics, CancellationToken::new());
    let mut differences = Vec::new();
    for aggregate in aggregates::REGISTRY.iter().filter(|a| a.kind != Kind::View) {
        // Not started (disabled, no sketches, shutdown): the refresher logged why.
        let _ = refresher.refresh(aggregate).await;
        let n = super::super::differences(pool, config, aggregate).await?;
        differences.push((aggregate.name, n));
    }
    Ok(differences)
}

pub(super) struct Summary {
    pub(super) ingested: u64,
    pub(super) ingest_runs: u32,
    pub(super) ingest_failures: u32,
    pub(super) old_history_inserted: i64,
    pub(super) old_history_left: i64,
    pub(super) differences: Vec<(&'static str, i64)>,
    pub(super) exit: Option<i32>,
    pub(super) errors: usize,
    pub(super) max_connections: u32,
}

pub(super) fn report(options: &SoakOptions, samples: &[Sample], s: Summary) -> String {
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let mut out = format!(
        "Soak: `tally run` for {} with every aggregate refreshing every {REFRESH_EVERY} ({}, max_concurrent 2), a \
         `tally ingest` of {} events every {}, partition maintenance and history pruning every minute; {} events at \
         the start.\n\n\
         | elapsed | worker RSS | worker connections | refreshes ok | refresh failures | events | refresh_runs rows |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        humantime::format_duration(options.duration),
        modes(),
        options.ingest_lines,
        humantime::format_duration(options.ingest_every),
        options.initial_events,
    );
    for sample in samples {
        let _ = writeln!(
            out,
            "| {}s | {} | {} | {} | {} | {} | {} |",
            sample.elapsed.as_secs(),
            mb(sample.rss_kb),
            sample.connections,
            sample.successes,
            sample.failures,
            sample.events,
            sample.history_rows
        );
    }
    let rss: Vec<u64> = samples.iter().map(|s| s.rss_kb).filter(|kb| *kb > 0).collect();
    let (first, last, max) =
        (rss.first().copied().unwrap_or(0), rss.last().copied().unwrap_or(0), rss.iter().copied().max().unwrap_or(0));
    // Growth after warm-up: the second half against the first.
    let half = rss.len() / 2;
    let avg = |v: &[u64]| if v.is_empty() { 0.0 } else { v.iter().sum::<u64>() as f64 / v.len() as f64 };
    let max_connections = samples.iter().map(|s| s.connections).max().unwrap_or(0);
    let last_sample = samples.last();
    let _ = write!(
        out,
        "\n- Worker RSS: first sample {}, last {}, max {}; mean of the second half {} vs first half {}.\n\
         - Worker connections: at most {max_connections} (pool size {}).\n\
         - Refreshes: {} successful, {} failed; worker log lines at ERROR: {}.\n\
         - Ingest: {} runs, {} failed, {} events loaded; {} events in the database at the end.\n\
         - History: {} rows older than history_days inserted during the run, {} left at the end.\n\
         - Aggregates compared with a computation from scratch after a last refresh: {}.\n\
         - Worker exit code after SIGTERM: {}.\n",
        mb(first),
        mb(last),
        mb(max),
        mb(avg(&rss[half..]) as u64),
        mb(avg(&rss[..half]) as u64),
        s.max_connections,
        last_sample.map_or(0, |l| l.successes),
        last_sample.map_or(0, |l| l.failures),
        s.errors,
        s.ingest_runs,
        s.ingest_failures,
        s.ingested,
        last_sample.map_or(0, |l| l.events),
        s.old_history_inserted,
        s.old_history_left,
        s.differences.iter().map(|(n, d)| format!("{n} {d} rows differ")).collect::<Vec<_>>().join(", "),
        s.exit.map_or("none (killed)".to_string(), |c| c.to_string()),
    );
    out
}
