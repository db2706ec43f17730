//! Graceful shutdown: one [`CancellationToken`] for every task, cancelled on
//! SIGTERM or SIGINT; refresh work runs in a [`TaskTracker`] so shutdown can
//! wait for it (tokio-cron-scheduler itself does not wait for running jobs).

use tokio::signal::unix::{SignalKind, signal};
pub use tokio_util::sync::CancellationToken;
pub use tokio_util::task::TaskTracker;

/// Cancels `shutdown` on the first SIGTERM or SIGINT, and `force` on a
/// second one during the graceful stop: the command is then dropped where
/// it stands (its destructors run, a throwaway cluster is removed) and
/// tally exits with [`crate::error::Error::Forced`]. The server cancels the
/// statements it leaves running within seconds
/// (`client_connection_check_interval`), so their transactions roll back.
/// Returns at once; the listening runs in a background task.
pub fn cancel_on_signal(shutdown: CancellationToken, force: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = shutdown.cancelled() => return,
        };
        tracing::info!(signal = name, "shutting down");
        shutdown.cancel();
        let again = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::warn!(signal = again, "second signal: stopping now without waiting for running work");
        force.cancel();
    });
    Ok(())
}
