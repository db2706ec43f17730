//! Monthly partitions of the tables tally manages (`marketing.events`):
//! the current month and `premake_months` future months always exist.
//!
//! A month is created standalone (`LIKE` the parent) and then attached,
//! which takes only SHARE UPDATE EXCLUSIVE on the parent, so applications
//! keep reading and writing `events` meanwhile. Each month is its own short
//! transaction holding a transaction-scoped advisory lock (two workers never
//! race) and `SET LOCAL lock_timeout` (never queue in front of writers).

mod month;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, PgPool};

pub use month::{Month, months_between, required_months};

use crate::config::Config;
use crate::db::quote_ident;
use crate::metrics::Metrics;

/// First key of partition-maintenance advisory locks (`"tpar"`); the second
/// is `hashtext` of the table name.
pub const PARTITION_LOCK_CLASS: i32 = 0x7470_6172;

/// A month-partitioned table tally manages.
#[derive(Debug)]
pub struct ManagedTable {
    pub schema: &'static str,
    pub name: &'static str,
}

/// Every table whose partitions tally maintains.
pub static MANAGED_TABLES: &[ManagedTable] = &[ManagedTable { schema: "marketing", name: "events" }];

impl ManagedTable {
    /// `marketing.events`, as used in metric labels and messages.
    pub fn label(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn qualified(&self, relation: &str) -> String {
        format!("{}.{}", quote_ident(self.schema), quote_ident(relation))
    }

    fn default_partition(&self) -> String {
        format!("{}_default", self.name)
    }
}

/// What exists of one managed table right now.
#[derive(Debug, Clone)]
pub struct TableState {
    /// Monthly partitions attached, in order.
    pub months: Vec<Month>,
    /// Rows in the default partition, by the UTC month they belong to.
    pub default_rows: BTreeMap<Month, i64>,
}

impl TableState {
    pub fn default_row_count(&self) -> i64 {
        self.default_rows.values().sum()
    }

    /// Partitions after the month of `today`.
    pub fn future_months(&self, today: NaiveDate) -> usize {
        let current = Month::of(today);
        self.months.iter().filter(|m| **m > current).count()
    }
}

/// What maintenance will do to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    /// Months to create, in order.
    pub create: Vec<Month>,
    /// Months that cannot be created yet because rows for them sit in the
    /// default partition (PostgreSQL refuses to attach a month whose rows are
    /// in the default), with the number of such rows.
    pub blocked: Vec<(Month, i64)>,
}

/// Decides what to create: every required month that does not exist.
pub fn plan(state: &TableState, required: &[Month]) -> PartitionPlan {
    let mut plan = PartitionPlan { create: Vec::new(), blocked: Vec::new() };
    for month in required {
        if state.months.contains(month) {
            continue;
        }
        match state.default_rows.get(month) {
            Some(rows) if *rows > 0 => plan.blocked.push((*month, *rows)),
            _ => plan.create.push(*month),
        }
    }
    plan
}

/// Why a partition could not be created.
#[derive(Debug, thiserror::Error)]
#[error("creating partition {partition}: {reason}")]
pub struct PartitionError {
    pub partition: String,
    pub reason: String,
}

/// What maintenance did (or, in a dry run, would do) to one table.
#[derive(Debug, Clone)]
pub struct MaintenanceReport {
    pub table: String,
    pub plan: PartitionPlan,
    pub created: Vec<Month>,
    pub errors: Vec<String>,
    /// Another tally process held the table's maintenance lock.
    pub locked_elsewhere: bool,
}

/// Reads the partitions of `table` and the months of its default partition's rows.
pub async fn inspect(pool: &PgPool, table: &ManagedTable) -> Result<TableState, sqlx::Error> {
    let children: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace
         WHERE n.nspname = $1 AND p.relname = $2",
    )
    .bind(table.schema)
    .bind(table.name)
    .fetch_all(pool)
    .await?;
    let mut months: Vec<Month> = children.iter().filter_map(|c| Month::from_partition_name(table.name, c)).collect();
    months.sort();

    let mut default_rows = BTreeMap::new();
    if children.iter().any(|c| *c == table.default_partition()) {
        let counts: Vec<(NaiveDate, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, count(*)
             FROM {} GROUP BY 1",
            table.qualified(&table.default_partition())
        )))
        .fetch_all(pool)
        .await?;
        for (first_day, rows) in counts {
            default_rows.insert(Month::of(first_day), rows);
        }
    }
    Ok(TableState { months, default_rows })
}

/// Makes sure every required month of every managed table exists.
/// With `dry_run`, only plans. Updates the partition metrics when given.
pub async fn maintain(
    pool: &PgPool,
    config: &Config,
    today: NaiveDate,
    dry_run: bool,
    metrics: Option<&Metrics>,
) -> Result<Vec<MaintenanceReport>, sqlx::Error> {
    let required = required_months(today, config.partitions.premake_months);
    let mut reports = Vec::new();
    for table in MANAGED_TABLES {
        let (report, state) = ensure_months(pool, config, table, &required, dry_run).await?;
        if let Some(metrics) = metrics {
            let label = table.label();
            metrics.partitions.with_label_values(&[label.as_str()]).set(state.months.len() as i64);
            metrics.partition_future_months.with_label_values(&[label.as_str()]).set(state.future_months(today) as i64);
            metrics.default_partition_rows.with_label_values(&[label.as_str()]).set(state.default_row_count());
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Creates whichever of `months` `table` lacks (or, with `dry_run`, only
/// plans), and returns the report and the table's state afterwards.
pub async fn ensure_months(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    months: &[Month],
    dry_run: bool,
) -> Result<(MaintenanceReport, TableState), sqlx::Error> {
    let state = inspect(pool, table).await?;
    let plan = plan(&state, months);
    let mut report = MaintenanceReport {
        table: table.label(),
        plan: plan.clone(),
        created: Vec::new(),
        errors: Vec::new(),
        locked_elsewhere: false,
    };
    if dry_run {
        return Ok((report, state));
    }
    for month in &plan.create {
        match create_month(pool, config, table, *month).await {
            Ok(true) => report.created.push(*month),
            Ok(false) => {
                report.locked_elsewhere = true;
                break;
            }
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    log_report(&report);
    let state = if report.created.is_empty() { state } else { inspect(pool, table).await? };
    Ok((report, state))
}

/// Creates and attaches one month in its own transaction. `Ok(false)` when
/// another tally process holds the table's maintenance lock.
async fn create_month(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    month: Month,
) -> Result<bool, PartitionError> {
    let name = month.partition_name(table.name);
    let fail = |e: sqlx::Error| PartitionError { partition: table.qualified(&name), reason: crate::db::describe(&e) };
    let mut tx = pool.begin().await.map_err(fail)?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
        .bind(PARTITION_LOCK_CLASS)
        .bind(table.label())
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
    if !locked {
        return Ok(false);
    }
    crate::db::set_local_timeouts(&mut tx, &config.database).await.map_err(fail)?;
    let partition = table.qualified(&name);
    let parent = table.qualified(table.name);
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {partition} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
             INCLUDING STORAGE INCLUDING COMMENTS)"
        ),
        format!(
            "ALTER TABLE {parent} ATTACH PARTITION {partition} FOR VALUES FROM ('{}') TO ('{}')",
            month.start().format("%Y-%m-%d %H:%M:%S+00"),
            month.plus(1).start().format("%Y-%m-%d %H:%M:%S+00"),
        ),
    ];
    for statement in statements {
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut *tx).await.map_err(fail)?;
    }
    sqlx::query("INSERT INTO tally.partition_log (parent, partition, action, detail) VALUES ($1, $2, 'create', $3)")
        .bind(table.label())
        .bind(format!("{}.{}", table.schema, name))
        .bind(format!("month {month}"))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(true)
}

fn log_report(report: &MaintenanceReport) {
    for month in &report.created {
        tracing::info!(table = %report.table, month = %month, "created partition");
    }
    for (month, rows) in &report.plan.blocked {
        tracing::warn!(table = %report.table, month = %month, rows, "rows for this month sit in the default partition; its partition cannot be created until they are moved");
    }
    for error in &report.errors {
        tracing::error!(table = %report.table, %error, "partition maintenance failed");
    }
    if report.locked_elsewhere {
        tracing::info!(table = %report.table, "another tally process is maintaining partitions; skipped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(year: i32, month: u32) -> Month {
        Month::new(year, month).unwrap()
    }

    #[test]
    fn plan_creates_only_missing_months() {
        let state = TableState { months: vec![m(2026, 11), m(2026, 12)], default_rows: BTreeMap::new() };
        let required = [m(2026, 11), m(2026, 12), m(2027, 1), m(2027, 2)];
        assert_eq!(plan(&state, &required), PartitionPlan { create: vec![m(2027, 1), m(2027, 2)], blocked: vec![] });
        let complete = TableState { months: required.to_vec(), default_rows: BTreeMap::new() };
        assert_eq!(plan(&complete, &required), PartitionPlan { create: vec![], blocked: vec![] });
    }

    #[test]
    fn months_with_rows_in_the_default_are_blocked_not_created() {
        let state =
            TableState { months: vec![m(2026, 11)], default_rows: BTreeMap::from([(m(2027, 1), 7), (m(2019, 1), 3)]) };
        let required = [m(2026, 11), m(2026, 12), m(2027, 1)];
        let plan = plan(&state, &required);
        assert_eq!(plan.create, vec![m(2026, 12)]);
        assert_eq!(plan.blocked, vec![(m(2027, 1), 7)]);
        assert_eq!(state.default_row_count(), 10);
    }
}
