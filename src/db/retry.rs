//! Retrying work whose failure may be transient (lock timeouts, deadlocks,
//! serialization failures, lost connections), with exponential backoff and
//! jitter, giving up at once on permanent errors or at shutdown.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// An error that knows whether trying again may help.
pub trait Transient: Display {
    fn is_transient(&self) -> bool;
}

impl Transient for sqlx::Error {
    fn is_transient(&self) -> bool {
        super::is_transient(self)
    }
}

/// The result of the last attempt and how many attempts were made.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

/// Runs `attempt` up to `max_attempts` times while it fails transiently,
/// waiting 1 s, 2 s, 4 s, ... (at most 60 s, each scaled by a random factor
/// in [0.5, 1.5)) in between. Each retry is logged once, naming `what`.
pub async fn with_retries<T, E, F, Fut>(
    what: &str,
    max_attempts: u32,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Retried<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_secs(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Retried { result: Ok(value), attempts },
            Err(error) => error,
        };
        if !error.is_transient() || attempts >= max_attempts || shutdown.is_cancelled() {
            return Retried { result: Err(error), attempts };
        }
        let pause = super::with_jitter(delay);
        tracing::warn!(what, attempt = attempts, retry_in = ?pause, %error, "transient failure; retrying");
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return Retried { result: Err(error), attempts },
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}
