//! Creating a month: a standalone table `LIKE` the parent (with its indexes),
//! then `ATTACH PARTITION`. Readers are never blocked by the parent's locks
//! (SHARE, then SHARE UPDATE EXCLUSIVE); writers wait for the few
//! milliseconds the attach takes (see [`hold_writers`]). Also the locked
//! transaction every maintenance step runs in.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{ManagedTable, Month, PARTITION_LOCK_CLASS, TableState};
use crate::config::Config;
use crate::db::{execute, quote_ident};

/// How a maintenance step ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    Done(T),
    /// Another tally process holds the table's maintenance lock.
    LockedElsewhere,
}

/// Begins a transaction that holds `table`'s maintenance lock (transaction
/// scoped, so it also works through PgBouncer) and `SET LOCAL` timeouts:
/// maintenance gives up on a lock after `lock_timeout` instead of queueing in
/// front of application writes. `None` when another process holds the lock.
pub(super) async fn begin_locked(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
        .bind(PARTITION_LOCK_CLASS)
        .bind(table.label())
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    crate::db::set_local_timeouts(&mut tx, &config.database).await?;
    Ok(Some(tx))
}

/// Creates and attaches one month in its own transaction.
pub(super) async fn create_month(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    month: Month,
) -> Result<Step<String>, sqlx::Error> {
    let Some(mut tx) = begin_locked(pool, config, table).await? else {
        return Ok(Step::LockedElsewhere);
    };
    hold_writers(&mut tx, table).await?;
    create_standalone(&mut tx, table, month).await?;
    attach(&mut tx, table, month).await?;
    log_action(&mut tx, table, month, "create", "created and attached").await?;
    tx.commit().await?;
    Ok(Step::Done("created".to_string()))
}

/// Holds writers of the table back (SHARE lock on the parent; readers go on)
/// until the transaction ends, so that attaching a month happens between
/// inserts. Without it, an insert that routed its row to the default
/// partition just before the attach fails with "violates partition
/// constraint" when the row belongs to the attached month. Taken first, under
/// `lock_timeout`: behind a long writer, maintenance gives up and retries.
pub(super) async fn hold_writers(conn: &mut PgConnection, table: &ManagedTable) -> Result<(), sqlx::Error> {
    execute(conn, format!("LOCK TABLE {} IN SHARE MODE", table.qualified(&table.name))).await
}

/// The table that will hold `month`, not attached yet: same columns,
/// defaults, constraints and indexes as the parent, so that attaching it
/// adopts its indexes instead of building them.
pub(super) async fn create_standalone(
    conn: &mut PgConnection,
    table: &ManagedTable,
    month: Month,
) -> Result<(), sqlx::Error> {
    execute(
        conn,
        format!(
            "CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES \
             INCLUDING STORAGE INCLUDING COMMENTS)",
            table.partition(month),
            table.qualified(&table.name)
        ),
    )
    .await
}

/// `ATTACH PARTITION` for the month's UTC bounds.
pub(super) async fn attach(conn: &mut PgConnection, table: &ManagedTable, month: Month) -> Result<(), sqlx::Error> {
    let (from, to) = bounds(month);
    execute(
        conn,
        format!(
            "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({from}) TO ({to})",
            table.qualified(&table.name),
            table.partition(month)
        ),
    )
    .await
}

/// The month's bounds as SQL timestamptz literals: first instant (included)
/// and the next month's first instant (excluded), in UTC.
pub(super) fn bounds(month: Month) -> (String, String) {
    let literal = |m: Month| format!("'{}'::timestamptz", m.start().format("%Y-%m-%d %H:%M:%S+00"));
    (literal(month), literal(month.plus(1)))
}

/// Appends to `tally.partition_log` in the step's transaction.
pub(super) async fn log_action(
    conn: &mut PgConnection,
    table: &ManagedTable,
    month: Month,
    action: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tally.partition_log (parent, partition, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(table.label())
        .bind(format!("{}.{}", table.schema, month.partition_name(&table.name)))
        .bind(action)
        .bind(format!("month {month}: {detail}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// The column list of a move, quoted, optionally prefixed (`d."id", ...`).
pub(super) fn column_list(state: &TableState, prefix: &str) -> String {
    state.columns.iter().map(|c| format!("{prefix}{}", quote_ident(c))).collect::<Vec<_>>().join(", ")
}
