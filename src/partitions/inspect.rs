//! Reading a managed table's layout from the catalog: its partition key,
//! columns, default partition, monthly partitions, and the months of the
//! rows waiting in its default partition.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, PgPool};

use super::{ManagedTable, Month, PartitionError};
use crate::db::quote_ident;

/// What exists of one managed table right now.
#[derive(Debug, Clone)]
pub struct TableState {
    /// The range partition key (a timestamptz column).
    pub column: String,
    /// The column that orders rows with equal keys when moving them in
    /// batches: `id` when the table has one, else `ctid`.
    pub tiebreaker: String,
    /// The tiebreaker's SQL type (`bigint`, `tid`, ...).
    pub tiebreaker_type: String,
    /// Every stored column, in the parent's order (what a move copies).
    pub columns: Vec<String>,
    /// The default partition, if the table has one.
    pub default_partition: Option<String>,
    /// Monthly partitions attached, in order.
    pub months: Vec<Month>,
    /// Rows in the default partition, by the UTC month they belong to.
    pub default_rows: BTreeMap<Month, i64>,
    /// Rows in the default partition no monthly partition can take:
    /// `±infinity`, or outside the years 1 to 9999. They stay there, counted.
    pub unplaceable_rows: i64,
    /// Partitions left "detach pending" by an interrupted DETACH CONCURRENTLY.
    pub detach_pending: Vec<String>,
}

impl TableState {
    pub fn default_row_count(&self) -> i64 {
        self.default_rows.values().sum::<i64>() + self.unplaceable_rows
    }

    /// Partitions after the month of `today`.
    pub fn future_months(&self, today: NaiveDate) -> usize {
        let current = Month::of(today);
        self.months.iter().filter(|m| **m > current).count()
    }
}

/// Reads `table`'s state. Fails, naming the table, when it does not exist or
/// is not range-partitioned on one timestamptz column.
pub async fn inspect(
    pool: &PgPool,
    table: &ManagedTable,
    lock_timeout: Duration,
) -> Result<TableState, PartitionError> {
    let fail = |reason: String| PartitionError { relation: table.label(), reason };
    let db = |e: sqlx::Error| fail(crate::db::describe(&e));
    let key: Option<(String, String, String, i16, Option<String>)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), pt.partstrat::text, pt.partnatts,
                CASE WHEN pt.partdefid <> 0 THEN (SELECT relname::text FROM pg_class WHERE oid = pt.partdefid) END
         FROM pg_partitioned_table pt
         JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
         WHERE pt.partrelid = to_regclass($1)",
    )
    .bind(table.qualified(&table.name))
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some((column, column_type, strategy, key_columns, default_partition)) = key else {
        return Err(fail(
            "does not exist or is not a partitioned table; create it with PARTITION BY RANGE (a timestamptz column)"
                .into(),
        ));
    };
    if strategy != "r" || key_columns != 1 || column_type != "timestamp with time zone" {
        return Err(fail(format!(
            "is partitioned by `{strategy}` on {key_columns} column(s) of type {column_type}; tally manages \
             tables partitioned BY RANGE on one timestamptz column"
        )));
    }
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
         ORDER BY attnum",
    )
    .bind(table.qualified(&table.name))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let (tiebreaker, tiebreaker_type) = columns
        .iter()
        .find(|(name, _)| name == "id")
        .cloned()
        .unwrap_or_else(|| ("ctid".to_string(), "tid".to_string()));

    let children: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1)",
    )
    .bind(table.qualified(&table.name))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut months: Vec<Month> = children
        .iter()
        .filter(|(_, pending)| !pending)
        .filter_map(|(name, _)| Month::from_partition_name(&table.name, name))
        .collect();
    months.sort();
    let detach_pending = children.iter().filter(|(_, pending)| *pending).map(|(name, _)| name.clone()).collect();

    let mut default_rows = BTreeMap::new();
    let mut unplaceable_rows = 0;
    if let Some(default) = &default_partition {
        // Only months a partition name and a date in tally can hold come
        // back as dates; an application may write 'infinity' or year 300000.
        // Counting reads the default partition: under `lock_timeout`, so a
        // long lock on the table fails this reading instead of queueing.
        let mut tx = pool.begin().await.map_err(db)?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", lock_timeout.as_millis()))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let counts: Vec<(Option<NaiveDate>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CASE WHEN {column} >= '0001-01-01 00:00:00+00' AND {column} < '10000-01-01 00:00:00+00'
                         THEN date_trunc('month', {column} AT TIME ZONE 'UTC')::date END,
                    count(*)
             FROM {} GROUP BY 1",
            table.qualified(default),
            column = quote_ident(&column)
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        for (first_day, rows) in counts {
            match first_day {
                Some(first_day) => {
                    default_rows.insert(Month::of(first_day), rows);
                }
                None => unplaceable_rows += rows,
            }
        }
    }
    Ok(TableState {
        column,
        tiebreaker,
        tiebreaker_type,
        columns: columns.into_iter().map(|(name, _)| name).collect(),
        default_partition,
        months,
        default_rows,
        unplaceable_rows,
        detach_pending,
    })
}
