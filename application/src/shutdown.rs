//! Waiting on the shutdown signal that every background task (projection runners, the inbox
//! processor, outbox relays) follows.

use std::time::Duration;
use tokio::sync::watch;

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Waits `pause` before a task starts again after an error; false if shutdown came first.
pub async fn pause_unless_stopped(shutdown: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        () = stopped(shutdown) => false,
    }
}
