//! Monthly partitions of the tables tally manages (`marketing.events`, plus
//! `[partitions] extra_tables`): the current month and `premake_months`
//! future months always exist; rows stuck in the default partition are moved
//! into their months; months older than `retention_months` are retired.
//!
//! Planning is pure ([`plan`]); each action is its own short transaction
//! holding the table's advisory lock (two workers never race) and `SET
//! LOCAL lock_timeout` (never queue in front of application writes),
//! retried with backoff when it fails transiently. Every action is logged
//! once, in [`log_action`], and reported to the caller, with a reading of
//! each table afterwards. Partitions know nothing of aggregates, metrics or
//! the doctor: what depends on new months (invalidation triggers, index
//! sightings, partition metrics) is done by the caller, the maintenance pass (`src/maintenance.rs`).

mod create;
mod inspect;
mod month;
mod plan;
mod report;
mod rescue;
mod retire;

use std::sync::atomic::AtomicI64;

use chrono::NaiveDate;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use create::Step;
pub use inspect::{TableState, inspect};
pub use month::{Month, month_ranges, months_between, required_months};
pub use plan::{PartitionPlan, PlanSettings, plan, retention_horizon};
pub use report::{Action, ActionKind, ActionResult, MaintenanceReport, TableReading, render_reports};

use report::{action, log_action};

use crate::config::Config;
use crate::db::quote_ident;

/// The partitions of `marketing.events` with their bounds as the catalog
/// prints them (`sql/partitions/events_bounds.sql`: oid, name, lower,
/// upper), for queries to select from.
pub fn events_bounds() -> String {
    crate::db::template::render(include_str!("../../sql/partitions/events_bounds.sql"), &[])
}

/// First key of partition-maintenance advisory locks (`"tpar"`); the second
/// is `hashtext` of the table name (`marketing.events`).
pub const PARTITION_LOCK_CLASS: i32 = 0x7470_6172;

/// Attempts per maintenance action when it fails transiently (a lock timeout).
const MAX_ATTEMPTS: u32 = 3;

/// A month-partitioned table tally manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedTable {
    pub schema: String,
    pub name: String,
}

impl ManagedTable {
    /// `marketing.events`: always managed.
    pub fn events() -> ManagedTable {
        ManagedTable { schema: "marketing".into(), name: "events".into() }
    }

    /// `schema.name`, as used in metric labels, logs and messages.
    pub fn label(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// A relation in the table's schema, quoted.
    pub fn qualified(&self, relation: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(relation))
    }

    /// The month's partition, quoted, e.g. `"marketing"."events_p2026_11"`.
    pub fn partition(&self, month: Month) -> String {
        self.qualified(&month.partition_name(&self.name))
    }
}

/// Every table whose partitions tally maintains under `config`.
pub fn managed_tables(config: &Config) -> Vec<ManagedTable> {
    let extra = config.partitions.extra_tables.iter().filter_map(|label| {
        let (schema, name) = label.split_once('.')?;
        Some(ManagedTable { schema: schema.to_string(), name: name.to_string() })
    });
    std::iter::once(ManagedTable::events()).chain(extra).collect()
}

/// The plan settings of `config`.
pub fn plan_settings(config: &Config) -> PlanSettings {
    PlanSettings {
        premake_months: config.partitions.premake_months,
        retention_months: config.partitions.retention_months,
    }
}

/// Why a table could not be maintained.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{relation}: {reason}")]
pub struct PartitionError {
    pub relation: String,
    pub reason: String,
}

/// Plans and (unless `dry_run`) performs maintenance of every managed table
/// as of `today`, and reads each table afterwards.
pub async fn maintain(
    pool: &PgPool,
    config: &Config,
    today: NaiveDate,
    dry_run: bool,
    shutdown: &CancellationToken,
) -> Vec<MaintenanceReport> {
    let mut reports = Vec::new();
    for table in managed_tables(config) {
        let report = match inspect(pool, &table, config.database.lock_timeout.0).await {
            Err(e) => {
                tracing::error!(table = %table.label(), error = %e.reason, "cannot maintain partitions");
                MaintenanceReport { table: table.label(), actions: Vec::new(), error: Some(e.reason), reading: None }
            }
            Ok(state) => {
                let plan = plan(&state.months, &state.default_rows, today, plan_settings(config));
                if dry_run {
                    let actions = planned_actions(&table, &state, &plan);
                    MaintenanceReport { table: table.label(), actions, error: None, reading: None }
                } else {
                    let horizon = retention_horizon(today, config.partitions.retention_months);
                    let actions = perform(pool, config, &table, &state, &plan, horizon, shutdown).await;
                    let reading =
                        inspect(pool, &table, config.database.lock_timeout.0).await.ok().map(|after| TableReading {
                            partitions: after.months.len() as i64,
                            future_months: after.future_months(today) as i64,
                            default_rows: after.default_row_count(),
                        });
                    MaintenanceReport { table: table.label(), actions, error: None, reading }
                }
            }
        };
        reports.push(report);
    }
    reports
}

/// Creates whichever of `months` `table` lacks (no rescue, no retention):
/// for loading data into past months, e.g. the demo.
pub async fn create_months(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    months: &[Month],
) -> Result<Vec<Action>, PartitionError> {
    let state = inspect(pool, table, config.database.lock_timeout.0).await?;
    let shutdown = CancellationToken::new();
    let mut actions = Vec::new();
    for month in months.iter().filter(|m| !state.months.contains(m)) {
        let retried = crate::db::with_retries(&table.label(), MAX_ATTEMPTS, &shutdown, || {
            create::create_month(pool, config, table, *month)
        })
        .await;
        actions.push(log_action(&table.label(), action(Some(*month), ActionKind::Create, retried)));
    }
    Ok(actions)
}

fn planned_actions(table: &ManagedTable, state: &TableState, plan: &PartitionPlan) -> Vec<Action> {
    let planned = |month, kind| Action { month, kind, result: ActionResult::Planned };
    let pending =
        state.detach_pending.iter().map(|p| planned(Month::from_partition_name(&table.name, p), ActionKind::Finalize));
    let create = plan.create.iter().map(|m| planned(Some(*m), ActionKind::Create));
    let rescue = plan.rescue.iter().map(|(m, rows)| planned(Some(*m), ActionKind::Rescue { rows: *rows }));
    let retire = plan.retire.iter().map(|m| planned(Some(*m), ActionKind::Retire));
    pending.chain(create).chain(rescue).chain(retire).collect()
}

async fn perform(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    state: &TableState,
    plan: &PartitionPlan,
    horizon: Option<Month>,
    shutdown: &CancellationToken,
) -> Vec<Action> {
    let label = table.label();
    let mut actions = Vec::new();
    for partition in &state.detach_pending {
        let retried = crate::db::with_retries(&label, MAX_ATTEMPTS, shutdown, || async {
            retire::finalize_pending(pool, config, table, partition, horizon).await.map(Step::Done)
        })
        .await;
        let month = Month::from_partition_name(&table.name, partition);
        actions.push(log_action(&label, action(month, ActionKind::Finalize, retried)));
    }
    let mut steps: Vec<(Month, ActionKind)> = plan.create.iter().map(|m| (*m, ActionKind::Create)).collect();
    steps.extend(plan.rescue.iter().map(|(m, rows)| (*m, ActionKind::Rescue { rows: *rows })));
    steps.extend(plan.retire.iter().map(|m| (*m, ActionKind::Retire)));
    for (month, kind) in steps {
        if shutdown.is_cancelled() {
            break;
        }
        let moved = AtomicI64::new(0);
        let retried = crate::db::with_retries(&label, MAX_ATTEMPTS, shutdown, || async {
            match &kind {
                ActionKind::Create => create::create_month(pool, config, table, month).await,
                ActionKind::Rescue { rows } => {
                    rescue::rescue_month(pool, config, table, state, month, *rows, &moved, shutdown).await
                }
                ActionKind::Retire | ActionKind::Finalize => {
                    retire::retire_month(pool, config, table, state, month).await
                }
            }
        })
        .await;
        let done = log_action(&label, action(Some(month), kind, retried));
        let stop = done.result == ActionResult::LockedElsewhere;
        actions.push(done);
        if stop {
            break;
        }
    }
    actions
}
