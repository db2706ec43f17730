//! What partition maintenance did or would do, action by action: the
//! report `tally partitions` prints as a table, and the one place where each
//! action is logged.

use super::Month;
use super::create::Step;
use crate::db::Retried;

/// What maintenance does to one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    Create,
    /// Move `rows` (as planned) out of the default partition.
    Rescue {
        rows: i64,
    },
    Retire,
    /// Finalize a detach an interrupted `DETACH ... CONCURRENTLY` left pending.
    Finalize,
}

impl ActionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Rescue { .. } => "rescue",
            ActionKind::Retire => "retire",
            ActionKind::Finalize => "finalize",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    /// A dry run: nothing was changed.
    Planned,
    Done {
        detail: String,
        attempts: u32,
    },
    /// Another tally process is maintaining this table; it was left alone.
    LockedElsewhere,
    Failed {
        error: String,
        attempts: u32,
    },
}

/// One planned or performed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub month: Option<Month>,
    pub kind: ActionKind,
    pub result: ActionResult,
}

/// What maintenance did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone)]
pub struct MaintenanceReport {
    pub table: String,
    pub actions: Vec<Action>,
    /// The table could not be inspected (missing, not range-partitioned).
    pub error: Option<String>,
    /// What the table looks like after maintenance (not read in a dry run,
    /// nor when it cannot be inspected): for the caller's metrics.
    pub reading: Option<TableReading>,
}

/// A reading of a managed table after maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableReading {
    /// Monthly partitions attached.
    pub partitions: i64,
    /// Of those, months after the current one.
    pub future_months: i64,
    /// Rows waiting in the default partition.
    pub default_rows: i64,
}

impl MaintenanceReport {
    /// Failures of this table, one line each.
    pub fn failures(&self) -> Vec<String> {
        let actions = self.actions.iter().filter_map(|a| match &a.result {
            ActionResult::Failed { error, .. } => Some(format!("{} {}: {error}", a.kind.as_str(), show(a.month))),
            _ => None,
        });
        self.error.iter().cloned().chain(actions).map(|e| format!("{}: {e}", self.table)).collect()
    }
}

pub(super) fn action(month: Option<Month>, kind: ActionKind, retried: Retried<Step<String>, sqlx::Error>) -> Action {
    let attempts = retried.attempts;
    let result = match retried.result {
        Ok(Step::Done(detail)) => ActionResult::Done { detail, attempts },
        Ok(Step::LockedElsewhere) => ActionResult::LockedElsewhere,
        Err(e) => ActionResult::Failed { error: crate::db::describe(&e), attempts },
    };
    Action { month, kind, result }
}

/// Logs an action once, with its table and month, and hands it back.
pub(super) fn log_action(table: &str, action: Action) -> Action {
    let month = show(action.month);
    let kind = action.kind.as_str();
    match &action.result {
        ActionResult::Planned => {}
        ActionResult::Done { detail, attempts } => {
            tracing::info!(table, %month, action = kind, attempts, "{detail}");
        }
        ActionResult::LockedElsewhere => {
            tracing::info!(table, %month, action = kind, "another tally process is maintaining this table; skipped");
        }
        ActionResult::Failed { error, attempts } => {
            tracing::error!(table, %month, action = kind, attempts, %error, "partition maintenance failed; will retry at the next run");
        }
    }
    action
}

fn show(month: Option<Month>) -> String {
    month.map_or("-".to_string(), |m| m.to_string())
}

/// The plan/result table `tally partitions` prints.
pub fn render_reports(reports: &[MaintenanceReport]) -> String {
    let mut out = format!("{:<24} {:<8} {:<9} {:>8}  {}\n", "TABLE", "MONTH", "ACTION", "ROWS", "RESULT");
    for report in reports {
        if let Some(error) = &report.error {
            out.push_str(&format!("{:<24} {:<8} {:<9} {:>8}  failed: {error}\n", report.table, "-", "inspect", "-"));
        }
        if report.actions.is_empty() && report.error.is_none() {
            out.push_str(&format!("{:<24} {:<8} {:<9} {:>8}  nothing to do\n", report.table, "-", "-", "-"));
        }
        for action in &report.actions {
            let rows = match action.kind {
                ActionKind::Rescue { rows } => rows.to_string(),
                _ => "-".to_string(),
            };
            let result = match &action.result {
                ActionResult::Planned => "planned (dry run)".to_string(),
                ActionResult::Done { detail, attempts: 1 } => detail.clone(),
                ActionResult::Done { detail, attempts } => format!("{detail} (after {attempts} attempts)"),
                ActionResult::LockedElsewhere => {
                    "skipped: another tally process holds the maintenance lock".to_string()
                }
                ActionResult::Failed { error, attempts } => {
                    format!("failed after {}: {error}", crate::db::plural(*attempts, "attempt"))
                }
            };
            out.push_str(&format!(
                "{:<24} {:<8} {:<9} {:>8}  {result}\n",
                report.table,
                show(action.month),
                action.kind.as_str(),
                rows
            ));
        }
    }
    out
}
