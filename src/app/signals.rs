//! Shutdown on SIGINT/SIGTERM: the first signal drains and checkpoints, a second one exits at once.

use tokio_util::sync::CancellationToken;

/// Cancels `cancel` on the first SIGINT or SIGTERM; exits the process with
/// status 130 on a second one.
pub(super) fn install(cancel: CancellationToken) {
    tokio::spawn(async move {
        for count in 1.. {
            if wait_for_signal().await.is_err() {
                tracing::warn!("cannot listen for shutdown signals");
                return;
            }
            if count == 1 {
                tracing::info!("shutdown requested: finishing in-flight batches and writing checkpoints (signal again to exit at once)");
                cancel.cancel();
            } else {
                tracing::warn!("second signal: exiting without waiting");
                std::process::exit(130);
            }
        }
    });
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
