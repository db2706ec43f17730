//! How a refresh reads to a person: the line `tally refresh` prints for each
//! aggregate, and the reason it adds to the command's error when the
//! aggregate was not brought up to date.

use std::time::Duration;

use super::{NotStarted, RefreshOutcome, RefreshReport};
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
            let noun = crate::aggregates::find(name).map_or("day", |a| a.period.noun());
            let days = report.days.map_or(String::new(), |d| format!(", {}", plural(d.max(0) as u64, noun)));
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

/// The line for an aggregate whose refresh never started, and the failure
/// it stands for. An aggregate the server cannot build (no sketches) fails
/// the command only when it was `named`; refreshing everything skips it.
pub fn not_started(name: &str, why: NotStarted, named: bool) -> (String, Option<String>) {
    match why {
        NotStarted::Interrupted => (format!("{name}: not started, interrupted"), Some(format!("{name}: interrupted"))),
        NotStarted::Disabled => (format!("{name}: not refreshed, {why}"), Some(format!("{name}: {why}"))),
        NotStarted::NeedsSketches => (format!("{name}: not built: {why}"), named.then(|| format!("{name}: {why}"))),
    }
}
