//! The invalidation triggers of incremental mode, generated from the
//! registry's [`DirtyRule`]s for the aggregates configured `incremental` (and
//! enabled), and installed, replaced or removed to match the configuration.
//!
//! Per source table there is one AFTER ... FOR EACH STATEMENT trigger per
//! operation, with transition tables: INSERT (new rows), UPDATE (old and new
//! rows: a row moved to another day dirties both), DELETE (old rows) and
//! TRUNCATE (everything). Each appends a handful of rows to
//! `tally.invalidations` per statement, whatever the number of rows written.
//! Monthly partitions of `marketing.events` also get a TRUNCATE trigger that
//! dirties their month. Writes made directly to a partition (rather than
//! through `marketing.events`) are not seen; TRUNCATE of a partition is.

mod generate;

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

pub use generate::{KEYED_MARK_ROWS, TriggerSet, any_incremental, generate, qualified, sources, tracked};
use generate::{OPERATIONS, function_base};

use super::Aggregate;
use crate::config::{Config, Mode};
use crate::db::template::render;
use crate::db::{execute, quote_ident, quote_literal};

const PARTITION_TRIGGER: &str = include_str!("../../../sql/incremental/triggers/partition_trigger.sql");
const EVENTS_PARTITIONS: &str = include_str!("../../../sql/incremental/triggers/events_partitions.sql");

/// First key of the advisory lock around trigger installation (`"ttrg"`).
const TRIGGER_LOCK_CLASS: i32 = 0x7474_7267;

/// Why the triggers of a table an aggregate reads could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("{}", crate::db::describe(.0))]
    Database(#[from] sqlx::Error),
    #[error("cannot put the invalidation triggers of incremental mode on {table}: {reason}")]
    Table { table: String, reason: String },
}

/// Makes the installed triggers match `config`: installs or replaces them
/// for tables incremental aggregates read, removes them elsewhere, and gives
/// every partition of `marketing.events` its TRUNCATE trigger. Cheap when
/// nothing changed (a fingerprint comparison per table). Fails on the first
/// table whose triggers could not be installed, after trying every table.
pub async fn ensure(pool: &PgPool, config: &Config) -> Result<(), TriggerError> {
    ensure_for(pool, config, &tracked(config)).await
}

/// [`ensure`] for the aggregates `tracked` (the registry's incremental
/// ones, or an aggregate defined elsewhere, as a test does).
pub async fn ensure_for(pool: &PgPool, config: &Config, tracked: &[&'static Aggregate]) -> Result<(), TriggerError> {
    match install_all(pool, config, tracked).await?.into_iter().next() {
        Some((table, error)) => Err(table_error(pool, table, error).await),
        None => Ok(()),
    }
}

/// [`ensure`] before a refresh of `aggregate`: a table only another
/// aggregate reads that cannot carry triggers (dropped, or not tally's to
/// change) is logged, and fails only the aggregates that read it.
pub async fn ensure_reading(pool: &PgPool, config: &Config, aggregate: &Aggregate) -> Result<(), TriggerError> {
    let mut own = None;
    for (table, error) in install_all(pool, config, &tracked(config)).await? {
        if own.is_none() && aggregate.sources().contains(&table.as_str()) {
            own = Some(table_error(pool, table, error).await);
        } else {
            tracing::warn!(table, error = %crate::db::describe(&error), "could not install the invalidation triggers");
        }
    }
    own.map_or(Ok(()), Err)
}

/// What to do about a table whose triggers failed.
async fn table_error(pool: &PgPool, table: String, error: sqlx::Error) -> TriggerError {
    let hint = match crate::db::sqlstate(&error).as_deref() {
        Some("42501") => {
            let role: String = sqlx::query_scalar("SELECT current_user::text")
                .fetch_one(pool)
                .await
                .unwrap_or_else(|_| "tally".into());
            format!(
                "; tally's role must own the table or hold TRIGGER on it: GRANT TRIGGER ON {} TO {};",
                qualified(&table),
                quote_ident(&role)
            )
        }
        Some("42P01") => "; create the table, or correct the aggregate's SQL file".to_string(),
        _ => String::new(),
    };
    TriggerError::Table { reason: format!("{}{hint}", crate::db::describe(&error)), table }
}

/// Installs what every table wants; the tables that failed, with why.
async fn install_all(
    pool: &PgPool,
    config: &Config,
    tracked: &[&'static Aggregate],
) -> Result<Vec<(String, sqlx::Error)>, sqlx::Error> {
    let sources = sources(tracked);
    let wanted: Vec<Option<TriggerSet>> = sources.iter().map(|table| generate(config, tracked, table)).collect();
    let texts: Vec<Option<String>> = wanted.iter().map(|w| w.as_ref().map(|set| set.functions.join("\n"))).collect();
    // One query for every source table, so that a refresh with nothing to
    // change costs one round trip here: (wanted fingerprint, installed
    // fingerprint, tally triggers present), in `sources` order.
    let states: Vec<(Option<String>, Option<String>, i64)> = sqlx::query_as(
        "SELECT md5(s.wanted), ts.fingerprint,
                (SELECT count(*) FROM pg_trigger
                 WHERE tgrelid = to_regclass(s.source_table) AND tgname LIKE 'tally_invalidate_%')
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(source_table, wanted, position)
         LEFT JOIN tally.trigger_sets ts ON ts.source_table = s.source_table
         ORDER BY s.position",
    )
    .bind(&sources)
    .bind(&texts)
    .fetch_all(pool)
    .await?;
    let mut failures = Vec::new();
    for ((table, wanted), (fingerprint, installed, present)) in sources.iter().zip(&wanted).zip(states) {
        let complete = present == OPERATIONS.len() as i64;
        if installed == fingerprint && (wanted.is_none() || complete) && (wanted.is_some() || present == 0) {
            continue;
        }
        let wanted = wanted.as_ref().zip(fingerprint.as_deref());
        match apply(pool, config, table, wanted).await {
            Ok(()) => tracing::info!(table, installed = wanted.is_some(), "invalidation triggers updated"),
            // A connection lost is everyone's failure; a table that
            // refuses is its readers' alone.
            Err(e) if crate::db::is_transient(&e) => return Err(e),
            Err(e) => failures.push((table.to_string(), e)),
        }
    }
    // Tables whose triggers an aggregate no longer in the configuration
    // wanted (a declared aggregate removed): their triggers go, so writers
    // stop paying for marks nobody claims.
    let orphans: Vec<String> =
        sqlx::query_scalar("SELECT source_table FROM tally.trigger_sets WHERE NOT (source_table = ANY ($1))")
            .bind(&sources)
            .fetch_all(pool)
            .await?;
    for table in orphans {
        apply(pool, config, &table, None).await?;
        tracing::info!(table, "invalidation triggers removed: no configured aggregate reads the table");
    }
    if generate(config, tracked, "marketing.events").is_some() {
        ensure_partition_triggers(pool, config).await?;
    }
    mark_untracked_stale(pool, config).await?;
    Ok(failures)
}

/// Installs `wanted` (a trigger set and its fingerprint) on `table`, or
/// removes its triggers, in one transaction holding the table's trigger lock.
async fn apply(
    pool: &PgPool,
    config: &Config,
    table: &str,
    wanted: Option<(&TriggerSet, &str)>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(TRIGGER_LOCK_CLASS)
        .bind(table)
        .execute(&mut *tx)
        .await?;
    crate::db::set_local_timeouts(&mut tx, &config.database).await?;
    match wanted {
        Some((set, fingerprint)) => install(&mut tx, set, fingerprint).await?,
        None => uninstall(&mut tx, table).await?,
    }
    tx.commit().await
}

/// A disabled incremental aggregate gets no marks, so its table falls
/// behind: mark it stale, so that enabling it again rebuilds it.
async fn mark_untracked_stale(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    for aggregate in config.registry().iter().copied() {
        let untracked = config.aggregate(aggregate.name).is_some_and(|s| s.mode == Mode::Incremental && !s.enabled);
        if !untracked {
            continue;
        }
        let stale = format!("{}stale", super::catalog::FINGERPRINT_PREFIX);
        let table: Option<String> = sqlx::query_scalar(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'reporting' AND c.relname = $1 AND c.relkind = 'r'",
        )
        .bind(aggregate.name)
        .fetch_optional(pool)
        .await?
        .flatten();
        if table.is_some_and(|comment| comment != stale) {
            let mut conn = pool.acquire().await?;
            execute(&mut conn, format!("COMMENT ON TABLE {} IS '{stale}'", aggregate.qualified_name())).await?;
            tracing::info!(
                aggregate = aggregate.name,
                "disabled in incremental mode; it will be rebuilt when enabled again"
            );
        }
    }
    Ok(())
}

async fn install(conn: &mut PgConnection, set: &TriggerSet, fingerprint: &str) -> Result<(), sqlx::Error> {
    for function in &set.functions {
        execute(conn, function.clone()).await?;
    }
    for (name, create) in &set.triggers {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)",
        )
        .bind(set.table)
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
        if !exists {
            execute(conn, create.clone()).await?;
        }
    }
    sqlx::query(
        "INSERT INTO tally.trigger_sets (source_table, fingerprint) VALUES ($1, $2)
         ON CONFLICT (source_table) DO UPDATE SET fingerprint = excluded.fingerprint, installed_at = now()",
    )
    .bind(set.table)
    .bind(fingerprint)
    .execute(conn)
    .await?;
    Ok(())
}

async fn uninstall(conn: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
    for op in OPERATIONS {
        execute(conn, format!("DROP TRIGGER IF EXISTS tally_invalidate_{op} ON {}", qualified(table))).await?;
    }
    if table == "marketing.events" {
        let partitions = events_partitions(conn).await?;
        for partition in partitions {
            execute(
                conn,
                format!(
                    "DROP TRIGGER IF EXISTS tally_invalidate_truncate ON marketing.{}",
                    quote_ident(&partition.name)
                ),
            )
            .await?;
        }
    }
    let base = function_base(table);
    for op in OPERATIONS.iter().chain(["truncate_partition"].iter()) {
        execute(conn, format!("DROP FUNCTION IF EXISTS tally.{base}_{op}()")).await?;
    }
    sqlx::query("DELETE FROM tally.trigger_sets WHERE source_table = $1").bind(table).execute(conn).await?;
    Ok(())
}

/// A partition of `marketing.events`, as the catalog describes it.
struct EventsPartition {
    name: String,
    has_trigger: bool,
    /// Its bounds as printed by the catalog (`None`: the default partition).
    bounds: Option<(String, String)>,
}

/// Partitions of `marketing.events` with whether each has its TRUNCATE
/// trigger and its bounds: the triggers need nothing from partition naming.
async fn events_partitions(conn: &mut PgConnection) -> Result<Vec<EventsPartition>, sqlx::Error> {
    // Bounds print in the session's DateStyle and TimeZone, and would not
    // always read back the same elsewhere ('01/09/2026 05:30:00 IST' is
    // Israel's time to PostgreSQL). tally's sessions are ISO and UTC: the
    // driver sets both at connection start, which overrides database and
    // role defaults (and PgBouncer restores them per client).
    let query = render(EVENTS_PARTITIONS, &[("bounds", &crate::partitions::events_bounds())]);
    let rows: Vec<(String, bool, Option<String>, Option<String>)> =
        sqlx::query_as(AssertSqlSafe(query)).fetch_all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(name, has_trigger, lower, upper)| EventsPartition { name, has_trigger, bounds: lower.zip(upper) })
        .collect())
}

/// After partitions were created (the maintenance pass calls it): gives the
/// new partitions of `marketing.events` their TRUNCATE trigger, when an
/// incremental aggregate reads events.
pub async fn cover_new_partitions(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    match generate(config, &tracked(config), "marketing.events") {
        Some(_) => ensure_partition_triggers(pool, config).await,
        None => Ok(()),
    }
}

/// Gives each partition of `marketing.events` a TRUNCATE trigger dirtying
/// its bounds (the default partition: everything).
async fn ensure_partition_triggers(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let missing: Vec<EventsPartition> =
        events_partitions(&mut conn).await?.into_iter().filter(|p| !p.has_trigger).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    crate::db::set_local_timeouts(&mut tx, &config.database).await?;
    for partition in missing {
        let bounds = partition
            .bounds
            .map(|(lower, upper)| format!("{}, {}", quote_literal(&lower), quote_literal(&upper)))
            .unwrap_or_default();
        let create = render(
            PARTITION_TRIGGER,
            &[
                ("partition", &format!("marketing.{}", quote_ident(&partition.name))),
                ("function", &format!("tally.{}_truncate_partition", function_base("marketing.events"))),
                ("bounds", &bounds),
            ],
        );
        execute(&mut tx, create).await?;
    }
    tx.commit().await?;
    Ok(())
}
