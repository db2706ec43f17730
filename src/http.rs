//! The worker's HTTP endpoints on `TALLY_METRICS_ADDR`: `/metrics`
//! (Prometheus text), `/healthz` (process and scheduler alive) and `/readyz`
//! (database reachable, migrations applied); plus the client side of
//! `tally healthcheck`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing;
use chrono::Utc;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The scheduler must have ticked within this long for `/healthz` to pass.
const HEARTBEAT_LIMIT_SECONDS: i64 = 60;

/// What `/healthz` looks at. Written by the worker and the scheduler's
/// heartbeat job; read by the HTTP handler. Lock-free.
#[derive(Default)]
pub struct Health {
    phase: AtomicU8,
    heartbeat: AtomicI64,
}

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPING: u8 = 2;

impl Health {
    /// The scheduler is alive: called by its heartbeat job.
    pub fn beat(&self) {
        self.heartbeat.store(Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// The scheduler has started.
    pub fn running(&self) {
        self.beat();
        self.phase.store(RUNNING, Ordering::Relaxed);
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.phase.store(STOPPING, Ordering::Relaxed);
    }

    /// `Ok` while starting (waiting for the database is healthy behaviour)
    /// and while the scheduler's heartbeat is recent.
    fn check(&self) -> Result<&'static str, String> {
        match self.phase.load(Ordering::Relaxed) {
            STARTING => Ok("starting"),
            RUNNING => {
                let age = Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed);
                if age <= HEARTBEAT_LIMIT_SECONDS {
                    Ok("ok")
                } else {
                    Err(format!("scheduler has not ticked for {age}s"))
                }
            }
            _ => Err("shutting down".to_string()),
        }
    }
}

/// Shared state of the endpoints. The pool appears once the worker has connected.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub pool: Arc<OnceLock<PgPool>>,
}

/// Binds `addr` (failing at once if it is taken) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", routing::get(metrics))
        .route("/healthz", routing::get(healthz))
        .route("/readyz", routing::get(readyz))
        .with_state(state);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render(Utc::now()))
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.check() {
        Ok(text) => (StatusCode::OK, format!("{text}\n")),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {reason}\n")),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let Some(pool) = state.pool.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: not connected to PostgreSQL yet\n".to_string());
    };
    match crate::db::readiness(pool).await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}

/// `tally healthcheck`: GET `/healthz` on `addr` (an unspecified address
/// such as 0.0.0.0 means this host). `Ok` only on HTTP 200.
pub async fn healthcheck(addr: SocketAddr) -> Result<(), String> {
    let (status, body) = get(addr, "/healthz").await?;
    if status == 200 { Ok(()) } else { Err(format!("http://{addr}/healthz answered HTTP {status}: {}", body.trim())) }
}

/// A minimal HTTP/1.1 GET (status and body), enough for the worker's own
/// plain-text endpoints; gives up after 5 s.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let exchange = async {
        let mut stream = TcpStream::connect(target).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| format!("no answer from http://{target}{path} within 5s"))?
        .map_err(|e| {
            format!("cannot reach http://{target}{path}: {e}; is `tally run` listening on TALLY_METRICS_ADDR?")
        })?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("http://{target}{path} answered something that is not HTTP"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(super::dechunk("5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"), "hello, world");
    }
}
