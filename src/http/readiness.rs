//! What `/readyz` answers. The worker moves it through connecting (with the
//! reason of the last failed attempt), the start-up steps, and ready; only
//! then does `/readyz` turn 200, and from then on every documented series
//! of every enabled aggregate and managed table is on `/metrics`.

use std::sync::Mutex;

use sqlx::PgPool;

/// The worker's start-up progress. Written by the worker, read by `/readyz`.
#[derive(Default)]
pub struct Readiness(Mutex<Phase>);

#[derive(Default)]
enum Phase {
    /// No connection yet; the reason the last attempt failed, if one did.
    #[default]
    Connecting,
    ConnectFailed(String),
    /// Connected; running a start-up step (migrations, partitions, history).
    Starting(&'static str),
    Ready(PgPool),
}

impl Readiness {
    /// A connection attempt failed: `/readyz` says why.
    pub fn connect_failed(&self, reason: &str) {
        *self.lock() = Phase::ConnectFailed(reason.to_string());
    }

    /// Connected, now doing `step` ("applying migrations", ...).
    pub fn starting(&self, step: &'static str) {
        *self.lock() = Phase::Starting(step);
    }

    /// The start-up sequence is done: from now on `/readyz` checks `pool`.
    pub fn ready(&self, pool: PgPool) {
        *self.lock() = Phase::Ready(pool);
    }

    /// `Ok` when ready and the database answers with every migration applied.
    pub async fn check(&self) -> Result<(), String> {
        let pool = match &*self.lock() {
            Phase::Connecting => return Err("not connected to PostgreSQL yet".to_string()),
            Phase::ConnectFailed(reason) => {
                return Err(format!("not connected to PostgreSQL yet; the last attempt failed: {reason}"));
            }
            Phase::Starting(step) => return Err(format!("starting: {step}")),
            Phase::Ready(pool) => pool.clone(),
        };
        crate::db::readiness(&pool).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
