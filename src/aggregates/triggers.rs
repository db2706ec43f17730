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

use sqlx::{PgConnection, PgPool};

use super::catalog::execute;
use super::{DirtyRule, REGISTRY};
use crate::config::{Config, Mode};
use crate::db::quote_ident;

/// First key of the advisory lock around trigger installation (`"ttrg"`).
const TRIGGER_LOCK_CLASS: i32 = 0x7474_7267;

/// Source tables that can carry invalidation triggers.
const SOURCES: &[&str] = &["marketing.events", "marketing.leads", "marketing.conversions"];

const OPERATIONS: &[&str] = &["insert", "update", "delete", "truncate"];

/// The generated trigger functions and triggers of one source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSet {
    pub table: &'static str,
    /// `CREATE OR REPLACE FUNCTION` statements.
    pub functions: Vec<String>,
    /// (trigger name, `CREATE TRIGGER` statement) on the table itself.
    pub triggers: Vec<(String, String)>,
}

/// The (aggregate, rule) pairs that watch `table` under `config`.
fn watchers(config: &Config, table: &str) -> Vec<(&'static str, DirtyRule)> {
    REGISTRY
        .iter()
        .filter(|a| config.aggregate(a.name).is_some_and(|s| s.enabled && s.mode == Mode::Incremental))
        .flat_map(|a| a.dirtied_by.iter().filter(|rule| rule.table() == table).map(move |rule| (a.name, *rule)))
        .collect()
}

/// Whether any enabled aggregate is in incremental mode.
pub fn any_incremental(config: &Config) -> bool {
    SOURCES.iter().any(|table| !watchers(config, table).is_empty())
}

/// The trigger set `config` wants on `table`, or `None` when no incremental
/// aggregate reads it (then it carries no triggers: no ingest overhead).
pub fn generate(config: &Config, table: &'static str) -> Option<TriggerSet> {
    let watchers = watchers(config, table);
    if watchers.is_empty() {
        return None;
    }
    let tz = config.reporting_timezone.sql_literal();
    let lookback = config.attribution_lookback_days;
    let base = function_base(table);
    let mut functions = Vec::new();
    let mut triggers = Vec::new();
    for op in OPERATIONS {
        let body: Vec<String> = watchers.iter().filter_map(|(aggregate, rule)| mark(op, aggregate, *rule, &tz, lookback)).collect();
        let body = if body.is_empty() { "NULL;".to_string() } else { body.join("\n    ") };
        let function = format!("tally.{base}_{op}");
        functions.push(format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $tally$\nBEGIN\n    {body}\n    RETURN NULL;\nEND\n$tally$"
        ));
        let referencing = match *op {
            "insert" => "REFERENCING NEW TABLE AS new_rows ",
            "update" => "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
            "delete" => "REFERENCING OLD TABLE AS old_rows ",
            _ => "",
        };
        let name = format!("tally_invalidate_{op}");
        triggers.push((
            name.clone(),
            format!(
                "CREATE TRIGGER {name} AFTER {} ON {} {referencing}FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
                op.to_uppercase(),
                qualified(table)
            ),
        ));
    }
    if table == "marketing.events" {
        let body: Vec<String> = watchers.iter().map(|(aggregate, rule)| partition_mark(aggregate, *rule, &tz, lookback)).collect();
        functions.push(format!(
            "CREATE OR REPLACE FUNCTION tally.{base}_truncate_partition() RETURNS trigger LANGUAGE plpgsql AS $tally$\n\
             DECLARE lower timestamptz; upper timestamptz;\nBEGIN\n    IF TG_NARGS < 2 THEN\n        {}\n        RETURN NULL;\n    END IF;\n    \
             lower := TG_ARGV[0]::timestamptz;\n    upper := TG_ARGV[1]::timestamptz;\n    {}\n    RETURN NULL;\nEND\n$tally$",
            watchers.iter().map(|(aggregate, _)| all_mark(aggregate)).collect::<Vec<_>>().join("\n        "),
            body.join("\n    ")
        ));
    }
    Some(TriggerSet { table, functions, triggers })
}

/// The statement that records what `rule` makes dirty for operation `op`.
fn mark(op: &str, aggregate: &str, rule: DirtyRule, tz: &str, lookback: u32) -> Option<String> {
    if op == "truncate" {
        return Some(all_mark(aggregate));
    }
    let rows = match op {
        "insert" => "new_rows",
        "delete" => "old_rows",
        _ => "(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows)",
    };
    match rule {
        DirtyRule::DayOf { column, .. } => Some(format!(
            "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) \
             SELECT '{aggregate}', 'days', d, d FROM (SELECT DISTINCT (r.{column} AT TIME ZONE {tz})::date AS d FROM {rows} AS r) AS dirty;"
        )),
        DirtyRule::TouchWindow => {
            // On UPDATE only rows whose touch-defining columns changed matter.
            let rows = if op == "update" {
                "(SELECT o.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id \
                   WHERE (o.user_id, o.utm_source, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.occurred_at) \
                  UNION ALL SELECT n.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id \
                   WHERE (o.user_id, o.utm_source, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.occurred_at))"
            } else {
                rows
            };
            Some(format!(
                "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) \
                 SELECT '{aggregate}', 'touch_window', d, ((last_touch + make_interval(days => {lookback})) AT TIME ZONE {tz})::date \
                 FROM (SELECT (r.occurred_at AT TIME ZONE {tz})::date AS d, max(r.occurred_at) AS last_touch FROM {rows} AS r \
                       WHERE r.user_id IS NOT NULL AND nullif(r.utm_source, '') IS NOT NULL GROUP BY 1) AS dirty;"
            ))
        }
        DirtyRule::LeadAttribution if op == "update" => Some(format!(
            "INSERT INTO tally.invalidations (aggregate, kind, lead_id) \
             SELECT DISTINCT '{aggregate}', 'lead', n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id \
             WHERE (o.source, o.campaign, o.user_id) IS DISTINCT FROM (n.source, n.campaign, n.user_id);"
        )),
        // A new lead has no conversions yet; a lead with conversions cannot be deleted.
        DirtyRule::LeadAttribution => None,
    }
}

fn all_mark(aggregate: &str) -> String {
    format!("INSERT INTO tally.invalidations (aggregate, kind) VALUES ('{aggregate}', 'all');")
}

/// What TRUNCATE of one monthly partition (bounds `lower`, `upper`) dirties.
fn partition_mark(aggregate: &str, rule: DirtyRule, tz: &str, lookback: u32) -> String {
    let (kind, last) = match rule {
        DirtyRule::TouchWindow => ("touch_window", format!("((upper + make_interval(days => {lookback})) AT TIME ZONE {tz})::date")),
        _ => ("days", format!("((upper - interval '1 microsecond') AT TIME ZONE {tz})::date")),
    };
    format!(
        "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) VALUES ('{aggregate}', '{kind}', (lower AT TIME ZONE {tz})::date, {last});"
    )
}

fn function_base(table: &str) -> String {
    format!("invalidate_{}", table.rsplit('.').next().unwrap_or(table))
}

fn qualified(table: &str) -> String {
    table.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

/// Makes the installed triggers match `config`: installs or replaces them
/// for tables incremental aggregates read, removes them elsewhere, and gives
/// every partition of `marketing.events` its TRUNCATE trigger. Cheap when
/// nothing changed (a fingerprint comparison per table).
pub async fn ensure(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    for table in SOURCES {
        let wanted = generate(config, table);
        let fingerprint = match &wanted {
            Some(set) => Some(sqlx::query_scalar::<_, String>("SELECT md5($1)").bind(set.functions.join("\n")).fetch_one(pool).await?),
            None => None,
        };
        let installed: Option<String> = sqlx::query_scalar("SELECT fingerprint FROM tally.trigger_sets WHERE source_table = $1")
            .bind(*table)
            .fetch_optional(pool)
            .await?;
        let present = present_triggers(pool, table).await?;
        let complete = present == OPERATIONS.len() as i64;
        if installed == fingerprint && (wanted.is_none() || complete) && (wanted.is_some() || present == 0) {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))").bind(TRIGGER_LOCK_CLASS).bind(*table).execute(&mut *tx).await?;
        crate::db::set_local_timeouts(&mut tx, &config.database).await?;
        match (&wanted, &fingerprint) {
            (Some(set), Some(fingerprint)) => install(&mut tx, set, fingerprint).await?,
            _ => uninstall(&mut tx, table).await?,
        }
        tx.commit().await?;
        tracing::info!(table, installed = wanted.is_some(), "invalidation triggers updated");
    }
    if generate(config, "marketing.events").is_some() {
        ensure_partition_triggers(pool, config).await?;
    }
    mark_untracked_stale(pool, config).await
}

/// A disabled incremental aggregate gets no marks, so its table falls
/// behind: mark it stale, so that enabling it again rebuilds it.
async fn mark_untracked_stale(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    for aggregate in REGISTRY {
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
            tracing::info!(aggregate = aggregate.name, "disabled in incremental mode; it will be rebuilt when enabled again");
        }
    }
    Ok(())
}

async fn present_triggers(pool: &PgPool, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname LIKE 'tally_invalidate_%'")
        .bind(table)
        .fetch_one(pool)
        .await
}

async fn install(conn: &mut PgConnection, set: &TriggerSet, fingerprint: &str) -> Result<(), sqlx::Error> {
    for function in &set.functions {
        execute(conn, function.clone()).await?;
    }
    for (name, create) in &set.triggers {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)")
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
        for (partition, _) in partitions {
            execute(conn, format!("DROP TRIGGER IF EXISTS tally_invalidate_truncate ON marketing.{}", quote_ident(&partition))).await?;
        }
    }
    let base = function_base(table);
    for op in OPERATIONS.iter().chain(["truncate_partition"].iter()) {
        execute(conn, format!("DROP FUNCTION IF EXISTS tally.{base}_{op}()")).await?;
    }
    sqlx::query("DELETE FROM tally.trigger_sets WHERE source_table = $1").bind(table).execute(conn).await?;
    Ok(())
}

/// Partitions of `marketing.events` with whether each has its TRUNCATE trigger.
async fn events_partitions(conn: &mut PgConnection) -> Result<Vec<(String, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relname::text, EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tally_invalidate_truncate')
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'marketing.events'::regclass",
    )
    .fetch_all(conn)
    .await
}

/// Gives each partition of `marketing.events` a TRUNCATE trigger dirtying
/// its month (the default partition: everything).
pub async fn ensure_partition_triggers(pool: &PgPool, config: &Config) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let missing: Vec<String> = events_partitions(&mut conn).await?.into_iter().filter(|(_, has)| !has).map(|(p, _)| p).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    crate::db::set_local_timeouts(&mut tx, &config.database).await?;
    for partition in missing {
        let arguments = match crate::partitions::Month::from_partition_name("events", &partition) {
            Some(month) => format!(
                "'{}', '{}'",
                month.start().format("%Y-%m-%d %H:%M:%S+00"),
                month.plus(1).start().format("%Y-%m-%d %H:%M:%S+00")
            ),
            None => String::new(),
        };
        execute(
            &mut tx,
            format!(
                "CREATE TRIGGER tally_invalidate_truncate AFTER TRUNCATE ON marketing.{} FOR EACH STATEMENT \
                 EXECUTE FUNCTION tally.invalidate_events_truncate_partition({arguments})",
                quote_ident(&partition)
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
