//! Migrations: sql/migrations (embedded in the binary) applied on one
//! pooled session under `lock_timeout`, the repair of an interrupted
//! concurrent index build, and readiness (every migration applied).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{DatabaseUrl, DbError, describe, with_retries};
use crate::config::DatabaseConfig;

/// Applies pending migrations from `sql/migrations` (embedded in the binary)
/// on one session with `lock_timeout` and `statement_timeout` set, so a
/// migration never queues behind a long transaction (and every writer behind
/// it); one that times out is retried with backoff, then reported.
pub async fn migrate(pool: &PgPool, url: &DatabaseUrl, config: &DatabaseConfig) -> Result<(), DbError> {
    let shutdown = CancellationToken::new();
    let retried = with_retries("migrations", 3, &shutdown, || async {
        let mut conn = pool.acquire().await?;
        match migrate_on(&mut conn, config).await {
            // Back to the pool as it came: the session settings reset.
            Ok(()) => sqlx::query(
                // RESET, for both settings in one statement.
                "SELECT set_config(name, reset_val, false) FROM pg_settings
                 WHERE name IN ('lock_timeout', 'statement_timeout')",
            )
            .execute(&mut *conn)
            .await
            .map(drop),
            // Closed: the migration lock sqlx keeps when a migration fails
            // ends with the session instead of going back to the pool.
            Err(error) => {
                let _ = sqlx::Connection::close(conn.detach()).await;
                Err(error)
            }
        }
    })
    .await;
    retried.result.map_err(|e| DbError::Migrate { url: url.to_string(), reason: describe(&e) })?;
    tracing::info!(database = %url, "schema is up to date");
    Ok(())
}

async fn migrate_on(conn: &mut sqlx::PgConnection, config: &DatabaseConfig) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)")
        .bind(format!("{}ms", config.lock_timeout.0.as_millis()))
        .bind(format!("{}ms", config.statement_timeout.0.as_millis()))
        .execute(&mut *conn)
        .await?;
    relocate_bookkeeping(conn).await?;
    crate::MIGRATOR.run(&mut *conn).await.map_err(migrate_error)?;
    repair_invalid_indexes(conn).await
}

/// The indexes tally's `-- no-transaction` migrations build, as (name,
/// statement): each such file holds one `CREATE INDEX CONCURRENTLY IF NOT
/// EXISTS <name> ...;`. The doctor reads it too: these are the indexes
/// `tally migrate` repairs.
pub(crate) fn concurrent_migration_indexes() -> Vec<(String, String)> {
    let marker = "CREATE INDEX CONCURRENTLY IF NOT EXISTS ";
    let mut found = Vec::new();
    for migration in crate::MIGRATOR.iter().filter(|m| m.no_tx) {
        for line in migration.sql.as_str().lines().map(str::trim) {
            if let Some(name) = line.strip_prefix(marker).and_then(|rest| rest.split_whitespace().next()) {
                found.push((name.to_string(), line.trim_end_matches(';').to_string()));
            }
        }
    }
    found
}

/// A concurrent index build that failed or timed out leaves an INVALID index
/// behind, which the retry's `IF NOT EXISTS` would keep: drop such an index
/// of tally's own migrations and build it again (unless a build of it is in
/// progress, another worker's). Both steps run CONCURRENTLY under the
/// session's lock_timeout.
async fn repair_invalid_indexes(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    for (name, statement) in concurrent_migration_indexes() {
        let invalid: Option<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT i.indisvalid AND n.nspname IN ('marketing', 'tally') AND c.relname = $1
               -- not one another worker is building right now
               AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)",
        )
        .bind(&name)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(index) = invalid else { continue };
        tracing::warn!(%index, "an interrupted concurrent index build left this index invalid; building it again");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")))
            .execute(&mut *conn)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Databases migrated before the bookkeeping moved to the `tally` schema
/// have it in `public`: move it, so their migrations are not applied again.
async fn relocate_bookkeeping(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let Some(first) = crate::MIGRATOR.iter().next() else { return Ok(()) };
    let legacy: bool = sqlx::query_scalar(
        "SELECT to_regclass('public._sqlx_migrations') IS NOT NULL
            AND to_regclass('tally._sqlx_migrations') IS NULL
            AND to_regnamespace('tally') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !legacy {
        return Ok(());
    }
    // Only tally's own: another application's sqlx bookkeeping stays where it is.
    let ours: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public._sqlx_migrations WHERE version = $1 AND checksum = $2)",
    )
    .bind(first.version)
    .bind(first.checksum.as_ref())
    .fetch_one(&mut *conn)
    .await?;
    if ours {
        tracing::info!("moving public._sqlx_migrations to the tally schema");
        // IF EXISTS: another replica may have moved it a moment ago.
        sqlx::query("ALTER TABLE IF EXISTS public._sqlx_migrations SET SCHEMA tally").execute(&mut *conn).await?;
    }
    Ok(())
}

/// A migration error as a database error where it is one (so a lock timeout
/// counts as transient), as a protocol error otherwise.
fn migrate_error(error: sqlx::migrate::MigrateError) -> sqlx::Error {
    match error {
        sqlx::migrate::MigrateError::Execute(e) | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => e,
        other => sqlx::Error::Configuration(other.to_string().into()),
    }
}

/// `Ok` when the database answers and every embedded migration is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), String> {
    let latest = crate::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let check = sqlx::query_scalar::<_, Option<i64>>("SELECT max(version) FROM tally._sqlx_migrations WHERE success")
        .fetch_one(pool);
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Err(_) => Err("database did not answer within 3s".to_string()),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(Some(applied))) if applied >= latest => Ok(()),
        Ok(Ok(applied)) => Err(format!(
            "migrations pending: database is at version {}, tally needs {latest}; run `tally migrate`",
            applied.unwrap_or(0)
        )),
    }
}
