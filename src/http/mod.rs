//! The worker's HTTP endpoints on `TALLY_METRICS_ADDR`: `/metrics`
//! (Prometheus text), `/healthz` (process and scheduler alive) and `/readyz`
//! (start-up done, database reachable, migrations applied); plus the client
//! side of `tally healthcheck`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

mod addr;
mod client;
mod readiness;

pub use addr::MetricsAddr;
pub use client::{get, healthcheck};
pub use readiness::Readiness;

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

/// Shared state of the endpoints.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub readiness: Arc<Readiness>,
}

/// Binds `addr` (failing at once if it is taken) and serves until `shutdown`.
pub async fn serve(
    addr: &MetricsAddr,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr.socket_addrs()).await?;
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
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}
