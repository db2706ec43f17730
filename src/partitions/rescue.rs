//! Moving rows out of the default partition into their month (late or
//! far-future data), while applications keep writing:
//!
//! 1. create the month's table standalone, with a CHECK constraint of its
//!    bounds (so attaching it later needs no validation scan of it);
//! 2. if the month has more rows than one batch, move them in batches of
//!    `rescue_batch_rows`, each its own short transaction, with keyset
//!    pagination on (partition key, id) (`ctid` when there is no `id`);
//! 3. in one last short transaction: hold writers back (SHARE lock on the
//!    parent: reads go on), move what is left (including rows written
//!    meanwhile), attach the month.
//!
//! Every move is a DELETE ... RETURNING feeding an INSERT in one statement,
//! so a row is in exactly one place at every commit: none lost, none twice.
//! Rows moved by step 2 are out of sight of `marketing.events` until step 3
//! commits; a month that fits in one batch skips step 2 and moves atomically.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use super::create::{Step, attach, begin_locked, bounds, column_list, create_standalone, hold_writers, log_action};
use super::{ManagedTable, Month, TableState};
use crate::config::Config;
use crate::db::template::render;
use crate::db::{execute, quote_ident};

/// Step 2's batch move (`sql/partitions/rescue_batch.sql`).
const RESCUE_BATCH: &str = include_str!("../../sql/partitions/rescue_batch.sql");
/// Step 3's move of the rest (`sql/partitions/rescue_rest.sql`).
const RESCUE_REST: &str = include_str!("../../sql/partitions/rescue_rest.sql");

/// Rescues one month; `moved` counts the rows moved (across retries).
#[allow(clippy::too_many_arguments)]
pub(super) async fn rescue_month(
    pool: &PgPool,
    config: &Config,
    table: &ManagedTable,
    state: &TableState,
    month: Month,
    planned_rows: i64,
    moved: &AtomicI64,
    shutdown: &CancellationToken,
) -> Result<Step<String>, sqlx::Error> {
    let Some(default) = &state.default_partition else {
        return Ok(Step::Done("no default partition".to_string()));
    };
    let default = table.qualified(default);
    let partition = table.partition(month);
    let constraint = quote_ident(&format!("{}_bounds", month.partition_name(&table.name)));
    let key = quote_ident(&state.column);
    let (from, to) = bounds(month);

    // 1. The month's table, standalone, with its bounds as a CHECK constraint.
    let Some(mut tx) = begin_locked(pool, config, table).await? else { return Ok(Step::LockedElsewhere) };
    create_standalone(&mut tx, table, month).await?;
    execute(&mut tx, format!("ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS {constraint}")).await?;
    execute(
        &mut tx,
        format!("ALTER TABLE {partition} ADD CONSTRAINT {constraint} CHECK ({key} >= {from} AND {key} < {to})"),
    )
    .await?;
    tx.commit().await?;

    // 2. Batches, when there are more rows than one batch holds.
    let batch = i64::from(config.partitions.rescue_batch_rows);
    if planned_rows > batch {
        let tiebreaker = if state.tiebreaker == "ctid" { "ctid".to_string() } else { quote_ident(&state.tiebreaker) };
        let sql = render(
            RESCUE_BATCH,
            &[
                ("default", &default),
                ("partition", &partition),
                ("key", &key),
                ("from", &from),
                ("to", &to),
                ("tiebreaker", &tiebreaker),
                ("tiebreaker_type", &state.tiebreaker_type),
                ("columns", &column_list(state, "")),
                ("returning", &column_list(state, "d.")),
            ],
        );
        // No position yet: the key starts at -infinity, where the tiebreaker is never compared.
        let mut position: (Option<DateTime<Utc>>, Option<String>) = (None, None);
        loop {
            if shutdown.is_cancelled() {
                return Ok(Step::Done("interrupted by shutdown; the next run continues".to_string()));
            }
            let Some(mut tx) = begin_locked(pool, config, table).await? else { return Ok(Step::LockedElsewhere) };
            let (count, last_key, last_tiebreaker): (i64, Option<DateTime<Utc>>, Option<String>) =
                sqlx::query_as(AssertSqlSafe(sql.clone()))
                    .bind(position.0)
                    .bind(position.1.as_deref())
                    .bind(batch)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            moved.fetch_add(count, Ordering::Relaxed);
            tracing::debug!(table = %table.label(), %month, count, "moved a batch out of the default partition");
            match last_key {
                Some(k) if count == batch => position = (Some(k), last_tiebreaker),
                _ => break,
            }
        }
    }

    // 3. The rest, and the attach, with new default rows held back briefly.
    let Some(mut tx) = begin_locked(pool, config, table).await? else { return Ok(Step::LockedElsewhere) };
    hold_writers(&mut tx, table).await?;
    execute(&mut tx, format!("LOCK TABLE {default} IN EXCLUSIVE MODE")).await?;
    let rest_sql = render(
        RESCUE_REST,
        &[
            ("default", &default),
            ("partition", &partition),
            ("key", &key),
            ("from", &from),
            ("to", &to),
            ("columns", &column_list(state, "")),
        ],
    );
    let rest: i64 = sqlx::query_scalar(AssertSqlSafe(rest_sql)).fetch_one(&mut *tx).await?;
    attach(&mut tx, table, month).await?;
    execute(&mut tx, format!("ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS {constraint}")).await?;
    let total = moved.fetch_add(rest, Ordering::Relaxed) + rest;
    let detail = format!("moved {total} rows out of the default partition and attached");
    log_action(&mut tx, table, month, "rescue", &detail).await?;
    tx.commit().await?;
    Ok(Step::Done(format!("moved {total} rows")))
}
