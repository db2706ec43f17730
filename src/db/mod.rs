//! The database connection: a pool built from `DATABASE_URL` and `[database]`,
//! connecting with retry and backoff, migrations, readiness, and the
//! classification of PostgreSQL errors (transient or not, and how to say them).

mod cluster;
mod retry;
mod url;

use std::time::Duration;

use sqlx::postgres::{PgDatabaseError, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio_util::sync::CancellationToken;

pub use cluster::{ClusterError, EphemeralCluster};
pub use retry::{Retried, Transient, with_retries};
pub use url::{DatabaseUrl, UrlError};

use crate::config::DatabaseConfig;

/// How long to keep trying a database that does not answer.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// The worker: a database that is down now may be up in a minute.
    Forever,
    /// One-shot commands: give up after this long.
    For(Duration),
}

/// Why tally could not reach or prepare the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "could not connect to PostgreSQL at {url} after {attempts} attempts over {waited:?}: {reason}; \
         check that the server is running and that DATABASE_URL points at it"
    )]
    Unreachable { url: String, attempts: u32, waited: Duration, reason: String },
    #[error("stopped while waiting for PostgreSQL at {url}")]
    Interrupted { url: String },
    #[error("migrating {url} failed: {reason}")]
    Migrate { url: String, reason: String },
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// Opens the pool, retrying with exponential backoff (0.5 s doubling to 30 s,
/// with jitter) while the server is unreachable. Each failed attempt is
/// logged once, with the redacted URL.
pub async fn connect(
    url: &DatabaseUrl,
    config: &DatabaseConfig,
    patience: Patience,
    shutdown: &CancellationToken,
) -> Result<PgPool, DbError> {
    // Slow statements are expected (refreshes, demo data); keep sqlx from
    // logging their whole text at WARN.
    let mut options =
        url.connect_options()?.log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(10));
    if config.pgbouncer {
        // PgBouncer in transaction mode cannot keep prepared statements per session.
        options = options.statement_cache_capacity(0);
    }
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // One real connection attempt, so the error is the server's answer
        // (refused, authentication, unknown database) rather than a pool timeout.
        let error = match options.connect().await {
            Ok(probe) => {
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with(options);
                tracing::info!(database = %url, "connected to PostgreSQL");
                return Ok(pool);
            }
            Err(error) => describe(&error),
        };
        let waited = started.elapsed();
        let out_of_time = match patience {
            Patience::Forever => false,
            Patience::For(limit) => waited + delay > limit,
        };
        if out_of_time {
            return Err(DbError::Unreachable { url: url.to_string(), attempts, waited, reason: error });
        }
        let pause = with_jitter(delay);
        tracing::warn!(database = %url, attempt = attempts, retry_in = ?pause, %error, "PostgreSQL unreachable; retrying");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Err(DbError::Interrupted { url: url.to_string() }),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Applies pending migrations from `sql/migrations` (embedded in the binary)
/// on one session with `lock_timeout` and `statement_timeout` set, so a
/// migration never queues behind a long transaction (and every writer behind
/// it); one that times out is retried with backoff, then reported.
pub async fn migrate(pool: &PgPool, url: &DatabaseUrl, config: &DatabaseConfig) -> Result<(), DbError> {
    let shutdown = CancellationToken::new();
    let retried = with_retries("migrations", 3, &shutdown, || async {
        // A session of its own, closed afterwards whatever happened: its
        // settings, and the migration lock sqlx keeps when a migration fails,
        // end with it instead of going back to the pool.
        let mut conn = pool.acquire().await?.detach();
        let result = migrate_on(&mut conn, config).await;
        let _ = sqlx::Connection::close(conn).await;
        result
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

/// `SET LOCAL lock_timeout` and `statement_timeout` from `[database]`: they
/// end with the transaction, so pooled connections go back clean.
pub async fn set_local_timeouts(conn: &mut sqlx::PgConnection, config: &DatabaseConfig) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)")
        .bind(format!("{}ms", config.lock_timeout.0.as_millis()))
        .bind(format!("{}ms", config.statement_timeout.0.as_millis()))
        .execute(conn)
        .await?;
    Ok(())
}

/// A PostgreSQL error in one line: message, SQLSTATE, detail and hint.
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => {
                let mut text = format!("{} (SQLSTATE {})", pg.message(), pg.code());
                if let Some(detail) = pg.detail() {
                    text.push_str(&format!("; {detail}"));
                }
                if let Some(hint) = pg.hint() {
                    text.push_str(&format!("; hint: {hint}"));
                }
                text
            }
            None => db.message().to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether trying again later may succeed: lost connections, serialization
/// failures, deadlocks, lock timeouts and server shutdowns. SQL errors in a
/// definition, and statement timeouts, are permanent.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }
        _ => false,
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// `delay` scaled by a random factor in [0.5, 1.5), so replicas that failed
/// together do not retry together.
pub fn with_jitter(delay: Duration) -> Duration {
    delay.mul_f64(0.5 + rand::random::<f64>())
}

/// Quotes an SQL identifier (`"name"`, doubling inner quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
