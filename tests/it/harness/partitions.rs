//! Partition maintenance run in the test process, and reading what it did.

use chrono::NaiveDate;
use sqlx::PgPool;
use tally::partitions::{ActionResult, MaintenanceReport, Month};
use tokio_util::sync::CancellationToken;

use super::{TestDb, config};

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn month(y: i32, m: u32) -> Month {
    Month::new(y, m).unwrap()
}

/// One maintenance pass (partitions, then what depends on them) with the
/// config `toml`, as of `today`.
pub async fn maintain(db: &TestDb, toml: &str, today: NaiveDate) -> Vec<MaintenanceReport> {
    tally::maintenance::run(&db.pool, &config(toml), today, false, &CancellationToken::new()).await
}

/// The partitions of `parent`, by name.
pub async fn partition_names(pool: &PgPool, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1) ORDER BY 1",
    )
    .bind(parent)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The months of the actions of `kind` that were done.
pub fn done(report: &MaintenanceReport, kind: &str) -> Vec<String> {
    report
        .actions
        .iter()
        .filter(|a| a.kind.as_str() == kind && matches!(a.result, ActionResult::Done { .. }))
        .map(|a| a.month.map(|m| m.to_string()).unwrap_or_default())
        .collect()
}
