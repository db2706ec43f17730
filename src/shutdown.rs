//! Graceful shutdown: one [`CancellationToken`] for every task, cancelled on
//! SIGTERM or SIGINT; refresh work runs in a [`TaskTracker`] so shutdown can
//! wait for it (tokio-cron-scheduler itself does not wait for running jobs).

use tokio::signal::unix::{SignalKind, signal};
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// Cancels `token` on the first SIGTERM or SIGINT. Returns at once; the
/// listening runs in a background task.
pub fn cancel_on_signal(token: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = token.cancelled() => return,
        };
        tracing::info!(signal = name, "shutting down");
        token.cancel();
    });
    Ok(())
}
