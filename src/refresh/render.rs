//! How a refresh reads to a person: the line `tally refresh` prints for each
//! aggregate, and the reason it adds to the command's error when the
//! aggregate was not brought up to date.

use std::time::Duration;

use super::{RefreshOutcome, RefreshReport};
use crate::aggregates::RefreshKind;
use crate::db::plural;

/// The line for `report`, and the failure it stands for (`None` for a
/// success). `wait` is how long the refresh waited for another process.
pub fn line(report: &RefreshReport, wait: Duration) -> (String, Option<String>) {
    let name = report.aggregate;
    let seconds = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    let wait = humantime::format_duration(wait);
    match report.outcome {
        RefreshOutcome::Success => {
            // "refreshed (refreshed" says nothing: name the mode instead.
            let how = match report.kind {
                Some(RefreshKind::Refreshed) | None => report.mode,
                Some(kind) => kind.as_str(),
            };
            let days = report.days.map_or(String::new(), |d| format!(", {d} days"));
            (format!("{name}: refreshed ({how}{days}, {} rows, {seconds:.2}s)", report.rows.unwrap_or(0)), None)
        }
        RefreshOutcome::LockedElsewhere | RefreshOutcome::SkippedRunning => {
            let holder = report.holder.as_deref().unwrap_or("a session that has since ended");
            (
                format!(
                    "{name}: not refreshed: another tally process was still refreshing it after --wait {wait} ({holder})"
                ),
                Some(format!(
                    "{name}: another tally process held its refresh lock for the whole --wait {wait} ({holder}); \
                     run again when it is done, with a longer --wait, or see `tally status`"
                )),
            )
        }
        RefreshOutcome::Failure => {
            let error = report.error.as_deref().unwrap_or_default();
            (
                format!("{name}: failed after {}: {error}", plural(report.attempts, "attempt")),
                Some(format!("{name}: {error}")),
            )
        }
    }
}

/// The line for an aggregate whose refresh never started (shutdown).
pub fn not_started(name: &str) -> (String, Option<String>) {
    (format!("{name}: not started, interrupted"), Some(format!("{name}: interrupted")))
}
