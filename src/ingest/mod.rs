//! `tally ingest`: NDJSON event documents (MongoDB Extended JSON included)
//! into `marketing.events`, streaming with bounded memory, through COPY, in
//! batches that each commit whole. Every line ends loaded, a duplicate, or
//! rejected with its line number and reason; the three always add up to the
//! lines read. See docs/ingest.md.

pub mod document;
mod load;
#[cfg(test)]
mod properties;
mod reader;
pub mod rejects_file;
mod report;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use reader::{Rejection, Source};
pub use report::{Summary, totals};

use load::{LoadError, Loader};
use reader::{Batch, Limits};

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Lines per batch (each batch is one transaction).
    pub batch_rows: usize,
    /// Bytes per batch (rows and the lines' text), whichever limit comes first.
    pub batch_bytes: usize,
    /// Longer lines are rejected without being held in memory.
    pub max_line_bytes: usize,
    /// Lines at the start of the input to skip (to resume an interrupted run).
    pub skip_lines: u64,
    /// Append rejected lines, with their reasons, to this NDJSON file.
    pub rejects: Option<PathBuf>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_rows: 10_000,
            batch_bytes: 8 << 20,
            max_line_bytes: 1 << 20,
            skip_lines: 0,
            rejects: None,
        }
    }
}

/// Rejected lines printed on stderr at most; all of them go to `--rejects`.
const REJECTS_SHOWN: u64 = 100;

/// Ingests `source`; stops between batches when `shutdown` is cancelled.
/// Returns the summary even when the run stopped early (see its `stopped`).
/// Refuses, before reading anything, a `--rejects` file that is the input.
pub async fn ingest(
    pool: &PgPool,
    source: &Source,
    options: &IngestOptions,
    shutdown: &CancellationToken,
) -> Result<Summary, String> {
    if let Some(path) = &options.rejects {
        rejects_file::check(source, path)?;
    }
    let consumed = Arc::new(AtomicU64::new(0));
    let (input, size) =
        reader::open(source, consumed.clone()).map_err(|e| format!("cannot read {}: {e}", source.describe()))?;
    let mut rejects = options.rejects.as_deref().map(rejects_file::open).transpose()?;
    let mut loader = Loader::start(pool, &source.describe()).await.map_err(|e| crate::db::describe(&e))?;
    let limits = Limits {
        batch_rows: options.batch_rows.max(1),
        batch_bytes: options.batch_bytes.max(1),
        max_line_bytes: options.max_line_bytes,
        skip_lines: options.skip_lines,
    };
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Batch>(2);
    let stop = Arc::new(AtomicBool::new(false));
    let reading = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || reader::read(input, limits, sender, stop))
    };
    let progress = report::Progress::new(size, consumed);
    let started = Instant::now();
    let mut summary = Summary { source: source.describe(), run_id: loader.run_id, ..Summary::default() };
    let mut shown = 0;
    while let Some(mut batch) = batches.recv().await {
        if shutdown.is_cancelled() {
            summary.stopped = Some("interrupted".to_string());
            break;
        }
        match loader.load(&mut batch, shutdown).await {
            Ok(loaded) => summary.add(&batch, loaded),
            Err(LoadError::Interrupted) => {
                summary.stopped = Some("interrupted".to_string());
                break;
            }
            Err(LoadError::Database(e)) => {
                summary.stopped = Some(format!(
                    "loading lines {}..{} failed: {}",
                    batch.last_line + 1 - batch.lines,
                    batch.last_line,
                    crate::db::describe(&e)
                ));
                break;
            }
        }
        for rejection in &batch.rejects {
            shown += 1;
            if shown <= REJECTS_SHOWN {
                eprintln!("line {}: {}", rejection.line, rejection.reason);
            } else if shown == REJECTS_SHOWN + 1 {
                eprintln!("(more rejected lines are not shown here; --rejects FILE keeps them all)");
            }
            if let Some(file) = rejects.as_mut() {
                let json =
                    serde_json::json!({ "line": rejection.line, "reason": rejection.reason, "text": rejection.text });
                let written = writeln!(file, "{json}");
                if let Err(e) = written {
                    summary.stopped = Some(format!("cannot write the --rejects file: {e}"));
                }
            }
        }
        progress.update(summary.last_line);
    }
    // Stop the reader (it may be blocked on a full channel) and collect how it ended.
    stop.store(true, Ordering::Relaxed);
    drop(batches);
    let end = reading.await.map_err(|e| format!("the reader failed: {e}"))?;
    progress.finish();
    summary.skipped = end.skipped;
    if end.reached_end && end.skipped < options.skip_lines {
        summary.warnings.push(report::skipped_past_the_end(&summary.source, options.skip_lines, end.skipped));
    }
    if summary.stopped.is_none() {
        summary.stopped = end.error;
    }
    summary.elapsed = started.elapsed().max(Duration::from_micros(1));
    summary.peak_memory_bytes = report::peak_memory();
    let status = match &summary.stopped {
        None => "completed",
        Some(reason) if reason == "interrupted" => "interrupted",
        Some(_) => "failed",
    };
    if let Err(e) = loader.finish(status).await {
        tracing::warn!(error = %crate::db::describe(&e), "could not record the end of the ingest run");
    }
    Ok(summary)
}

/// Whether a progress bar fits (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}
