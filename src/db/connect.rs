//! Connecting: the pool built from `DATABASE_URL` and `[database]`, the
//! session settings that make the server notice a vanished client, retry
//! with backoff while the server is unreachable, and refusals that waiting
//! cannot cure (no such database or role, a wrong password).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio_util::sync::CancellationToken;

use super::{DatabaseUrl, DbError, Patience, describe, sqlstate, with_jitter};
use crate::config::DatabaseConfig;

/// How often a busy backend of tally's checks that tally is still there
/// (PostgreSQL 14+ `client_connection_check_interval`): a refresh whose
/// process was killed is cancelled within this long, releasing its locks,
/// instead of running to its end for nobody.
pub const CLIENT_CHECK_INTERVAL: &str = "2s";

/// TCP keepalives the server sends on tally's connections (idle seconds,
/// interval, count): a client host that vanished without closing its
/// connection (a power cut, a partition) is noticed within about a minute.
const SERVER_KEEPALIVES: [(&str, &str); 3] =
    [("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")];

/// After this long without a connection from the pool, one direct attempt
/// says why (the pool retries a refused connection silently).
const PROBE_AFTER: Duration = Duration::from_secs(1);

/// Connect options for tally's sessions: the URL's, `application_name`,
/// and the settings that make the server notice a vanished client. Sent
/// in the startup packet (no extra round trip), except through PgBouncer,
/// which refuses startup options: there each refresh sets the check with
/// `SET LOCAL` ([`super::set_local_timeouts`]).
pub fn session_options(url: &DatabaseUrl, config: &DatabaseConfig) -> Result<PgConnectOptions, DbError> {
    // Slow statements are expected (refreshes, demo data); keep sqlx from
    // logging their whole text at WARN.
    let mut options =
        url.connect_options()?.log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(10));
    if config.pgbouncer {
        // PgBouncer in transaction mode cannot keep prepared statements per session.
        options = options.statement_cache_capacity(0);
    } else {
        options =
            options.options([("client_connection_check_interval", CLIENT_CHECK_INTERVAL)]).options(SERVER_KEEPALIVES);
    }
    Ok(options)
}

/// Opens the pool, retrying with exponential backoff (0.5 s doubling to 30 s,
/// with jitter) while the server is unreachable. Each failed attempt is
/// logged once, with the redacted URL. The first connection stays in the
/// pool: a one-shot command works on that one session.
pub async fn connect(
    url: &DatabaseUrl,
    config: &DatabaseConfig,
    patience: Patience,
    shutdown: &CancellationToken,
) -> Result<PgPool, DbError> {
    connect_reporting(url, config, patience, shutdown, &|_| {}).await
}

/// [`connect`], telling `on_failure` the reason of each failed attempt (the
/// worker shows it on `/readyz`). A database or role that does not exist, a
/// wrong password or a refused `CONNECT` fails a one-shot command at once:
/// waiting does not fix them. The worker keeps trying (a DBA may be
/// creating the database), saying why at each attempt.
pub async fn connect_reporting(
    url: &DatabaseUrl,
    config: &DatabaseConfig,
    patience: Patience,
    shutdown: &CancellationToken,
    on_failure: &(dyn Fn(&str) + Send + Sync),
) -> Result<PgPool, DbError> {
    let options = session_options(url, config)?;
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options.clone());
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failure = tokio::select! {
            connected = first_connection(&pool, &options) => match connected {
                Ok(()) => {
                    tracing::info!(database = %url, "connected to PostgreSQL");
                    return Ok(pool);
                }
                Err(error) => error,
            },
            _ = shutdown.cancelled() => return Err(DbError::Interrupted { url: url.to_string() }),
        };
        let reason = url.scrub(&describe(&failure));
        on_failure(&reason);
        let refused = refusal_hint(&failure);
        if let (Some(hint), Patience::For(_)) = (refused, patience) {
            return Err(DbError::Refused { url: url.to_string(), reason, hint });
        }
        let waited = started.elapsed();
        let mut pause = with_jitter(delay);
        if let Patience::For(limit) = patience {
            if waited >= limit {
                return Err(DbError::Unreachable { url: url.to_string(), attempts, waited, reason });
            }
            // The last attempt is made at the limit, not a backoff before it.
            pause = pause.min(limit - waited);
        }
        match refused {
            Some(hint) => {
                tracing::error!(database = %url, attempt = attempts, retry_in = ?pause, error = %reason, hint, "PostgreSQL refused the connection; retrying")
            }
            None => {
                tracing::warn!(database = %url, attempt = attempts, retry_in = ?pause, error = %reason, "PostgreSQL unreachable; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Err(DbError::Interrupted { url: url.to_string() }),
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Opens the pool's first connection and leaves it in the pool. When that
/// takes longer than [`PROBE_AFTER`] (a refused connection is retried
/// inside the pool without a word), one direct attempt tells why; if that
/// one succeeds the server is merely slow, and the pool's attempt goes on.
async fn first_connection(pool: &PgPool, options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let acquire = pool.acquire();
    tokio::pin!(acquire);
    if let Ok(acquired) = tokio::time::timeout(PROBE_AFTER, &mut acquire).await {
        return acquired.map(drop);
    }
    match tokio::time::timeout(Duration::from_secs(10), options.connect()).await {
        Ok(Ok(probe)) => {
            let _ = probe.close().await;
            acquire.await.map(drop)
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within 10s of connecting",
        ))),
    }
}

/// What to do about a connection the server refused for good: an unknown
/// database or role, a wrong password, no `CONNECT` privilege, a
/// `pg_hba.conf` rule. `None` for failures that waiting may cure.
fn refusal_hint(error: &sqlx::Error) -> Option<&'static str> {
    match sqlstate(error).as_deref() {
        Some("3D000") => Some("create the database, or fix the database name in DATABASE_URL"),
        Some("28P01") => Some("check the password in DATABASE_URL"),
        Some("28000") => {
            Some("check the user in DATABASE_URL, and that pg_hba.conf lets it connect from this host to this database")
        }
        Some("42501") => Some("grant CONNECT on the database to this role, or use a role that has it"),
        _ if matches!(error, sqlx::Error::Configuration(_) | sqlx::Error::Tls(_)) => {
            Some("fix the connection settings in DATABASE_URL (sslmode, certificates)")
        }
        _ => None,
    }
}
