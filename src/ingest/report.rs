//! What an ingest run reports: the summary line, progress while it runs, and
//! the totals the worker exports as `tally_ingest_rows_total`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

use super::load::Loaded;
use super::reader::Batch;
use crate::db::plural;

/// The outcome of a run. `loaded + duplicate + rejected == lines`.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub source: String,
    pub run_id: i64,
    pub lines: u64,
    pub skipped: u64,
    pub loaded: u64,
    pub duplicate: u64,
    pub rejected: u64,
    /// Loaded rows that landed in the default partition.
    pub in_default: u64,
    /// Every line up to this one is committed.
    pub last_line: u64,
    pub elapsed: Duration,
    pub peak_memory_bytes: Option<u64>,
    /// Why the run stopped before the end of the input, if it did.
    pub stopped: Option<String>,
    /// Things the user should know that did not fail the run (printed on stderr).
    pub warnings: Vec<String>,
}

impl Summary {
    /// Why the run must exit non-zero, if it must: it stopped before the end
    /// of its input (how to resume), or it rejected lines and
    /// `allow_rejects` is off (where the reasons are). `skip_lines` and
    /// `rejects_file` are the run's options.
    pub fn failure(
        &self,
        skip_lines: u64,
        rejects_file: Option<&std::path::Path>,
        allow_rejects: bool,
    ) -> Option<String> {
        if let Some(reason) = &self.stopped {
            let resume = self.last_line.max(skip_lines);
            return Some(format!(
                "{reason}; every line up to {resume} is committed: resume with --skip-lines {resume} (or run the whole \
                 file again: lines already loaded count as duplicates)"
            ));
        }
        if self.rejected > 0 && !allow_rejects {
            return Some(format!(
                "{} {} rejected (reasons above{}); fix them and run again (loaded lines are not loaded twice), or \
                 pass --allow-rejects",
                plural(self.rejected, "line"),
                if self.rejected == 1 { "was" } else { "were" },
                rejects_file.map_or(String::new(), |f| format!(" and in {}", f.display()))
            ));
        }
        None
    }

    pub(super) fn add(&mut self, batch: &Batch, loaded: Loaded) {
        self.lines += batch.lines;
        self.loaded += loaded.loaded as u64;
        self.duplicate += loaded.duplicate as u64;
        self.rejected += batch.rejects.len() as u64;
        self.in_default += loaded.in_default as u64;
        self.last_line = batch.last_line;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} read: {} loaded, {}, {} rejected",
            self.source,
            plural(self.lines, "line"),
            self.loaded,
            plural(self.duplicate, "duplicate"),
            self.rejected
        )?;
        if self.skipped > 0 {
            write!(f, " ({} skipped)", self.skipped)?;
        }
        let rate = (self.lines as f64 / self.elapsed.as_secs_f64()).round() as u64;
        write!(f, "; {}/s", plural(rate, "line"))?;
        if let Some(peak) = self.peak_memory_bytes {
            write!(f, "; peak memory {} MiB", peak / (1 << 20))?;
        }
        if self.in_default > 0 {
            let (its, them, months) =
                if self.in_default == 1 { ("its", "it", "its month") } else { ("their", "them", "their months") };
            write!(
                f,
                "\n{} landed in the default partition (no partition for {its} month yet); \
                 partition maintenance moves {them} into {months} (`tally partitions`)",
                plural(self.in_default, "event")
            )?;
        }
        Ok(())
    }
}

/// A bar over the input's bytes on a terminal; a log line every 10% (or every
/// million lines when the size is unknown) otherwise.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    size: Option<u64>,
    consumed: Arc<AtomicU64>,
    reported: AtomicU64,
}

impl Progress {
    pub(super) fn new(size: Option<u64>, consumed: Arc<AtomicU64>) -> Progress {
        let bar = super::interactive().then(|| {
            let bar = match size {
                Some(size) => ProgressBar::new(size),
                None => ProgressBar::new_spinner(),
            };
            let template = if size.is_some() {
                "ingest [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {msg}"
            } else {
                "ingest {spinner} {bytes} read {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress { bar, size, consumed, reported: AtomicU64::new(0) }
    }

    pub(super) fn update(&self, last_line: u64) {
        let bytes = self.consumed.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(plural(last_line, "line"));
            }
            None => {
                let step = match self.size {
                    Some(size) => (bytes * 10).checked_div(size).unwrap_or(0),
                    None => last_line / 1_000_000,
                };
                if step > self.reported.swap(step, Ordering::Relaxed) {
                    tracing::info!(lines = last_line, bytes, "ingesting");
                }
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The warning for `--skip-lines` past the end of the input (a wrong file or
/// number, most likely). Not an error: the exit code says whether lines were
/// lost or the run failed, and here nothing was lost or loaded twice.
pub(super) fn skipped_past_the_end(source: &str, skip_lines: u64, lines: u64) -> String {
    format!(
        "--skip-lines {skip_lines} goes past the end of {source}, which has only {}: nothing was \
         loaded. Check that this is the file you meant, and the number (an interrupted run prints the one to resume with)",
        plural(lines, "line")
    )
}

/// This process's peak resident memory (VmHWM), where Linux tells it.
pub(super) fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Lines loaded, duplicate and rejected by every ingest run so far.
pub async fn totals(pool: &PgPool) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(loaded), 0)::bigint, coalesce(sum(duplicate), 0)::bigint, coalesce(sum(rejected), 0)::bigint
         FROM tally.ingest_runs",
    )
    .fetch_one(pool)
    .await
}
