//! Retention: detaching whole months older than the horizon, then dropping
//! them unless `retention_keep_table`.
//!
//! `DETACH PARTITION ... CONCURRENTLY` needs no ACCESS EXCLUSIVE lock on the
//! parent, but PostgreSQL refuses it when the table has a default partition
//! (and inside a transaction, so through PgBouncer too). Tables with a
//! default partition (like `marketing.events`) get a plain DETACH, under
//! `lock_timeout`: a catalog-only change that holds its lock for
//! milliseconds, and gives up instead of queueing when a reader is in the way.

use sqlx::PgPool;

use super::create::{Step, begin_locked, log_action};
use super::{ManagedTable, Month, PARTITION_LOCK_CLASS, TableState};
use crate::config::Config;
use crate::db::execute;

/// Detaches (and drops, unless `retention_keep_table`) one month.
pub(super) async fn retire_month(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    state: &TableState,
    month: Month,
) -> Result<Step<String>, sqlx::Error> {
    let parent = table.qualified(&table.name);
    let partition = table.partition(month);
    let keep = config.partitions.retention_keep_table;
    let concurrently = state.default_partition.is_none() && !config.database.pgbouncer;
    if !concurrently {
        let Some(mut tx) = begin_locked(pool, config, table).await? else { return Ok(Step::LockedElsewhere) };
        execute(&mut tx, format!("ALTER TABLE {parent} DETACH PARTITION {partition}")).await?;
        let detail = finish(&mut tx, table, &partition, month, keep, "detached").await?;
        tx.commit().await?;
        return Ok(Step::Done(detail));
    }
    // DETACH CONCURRENTLY runs outside a transaction: hold the maintenance
    // lock at session level around it, on one connection.
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(PARTITION_LOCK_CLASS)
        .bind(table.label())
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Step::LockedElsewhere);
    }
    let result = async {
        sqlx::query("SELECT set_config('lock_timeout', $1, false)")
            .bind(format!("{}ms", config.database.lock_timeout.0.as_millis()))
            .execute(&mut *conn)
            .await?;
        execute(&mut conn, format!("ALTER TABLE {parent} DETACH PARTITION {partition} CONCURRENTLY")).await?;
        let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
        let detail = finish(&mut tx, table, &partition, month, keep, "detached concurrently").await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(detail)
    }
    .await;
    // Always leave the pooled connection as it was.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2)), set_config('lock_timeout', '0', false)")
        .bind(PARTITION_LOCK_CLASS)
        .bind(table.label())
        .execute(&mut *conn)
        .await;
    result.map(Step::Done)
}

/// Completes a detach that an interrupted `DETACH ... CONCURRENTLY` left
/// pending (the partition is already out of sight of new queries). The
/// table is dropped only when retention retires its month (and does not
/// keep tables); otherwise it stays, detached, for whoever started the detach.
pub(super) async fn finalize_pending(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    partition_name: &str,
    horizon: Option<Month>,
) -> Result<String, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let partition = table.qualified(partition_name);
    execute(&mut conn, format!("ALTER TABLE {} DETACH PARTITION {partition} FINALIZE", table.qualified(&table.name)))
        .await?;
    let retired = Month::from_partition_name(&table.name, partition_name).filter(|m| horizon.is_some_and(|h| *m < h));
    let Some(month) = retired else {
        return Ok("finalized a pending detach; table kept".to_string());
    };
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    let detail =
        finish(&mut tx, table, &partition, month, config.partitions.retention_keep_table, "detach finalized").await?;
    tx.commit().await?;
    Ok(detail)
}

/// Drops the detached month unless it is kept, and logs what happened.
async fn finish(
    conn: &mut sqlx::PgConnection,
    table: &ManagedTable,
    partition: &str,
    month: Month,
    keep: bool,
    how: &str,
) -> Result<String, sqlx::Error> {
    let detail = if keep {
        format!("{how}; table kept (retention_keep_table)")
    } else {
        execute(conn, format!("DROP TABLE {partition}")).await?;
        format!("{how} and dropped")
    };
    log_action(conn, table, month, "retire", &detail).await?;
    Ok(detail)
}
