//! Progress on every replica: a replica that does not run a projection (another holds its
//! lease) still answers read-your-writes queries and readiness, from the checkpoint the holder
//! committed. This follower reads that checkpoint and publishes it, as the runner does after
//! its own commits (publishing only moves forward, so the two never disagree).

use lablet_application::ports::{EventStore, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_application::shutdown::pause_unless_stopped;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the committed checkpoints are read.
const EVERY: Duration = Duration::from_millis(50);

/// Publishes the committed checkpoint of each projection in `names` until `stop` turns true;
/// a projection is caught up once its checkpoint has reached the head read just before.
pub async fn follow_checkpoints(
    events: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    progress: ProjectionProgress,
    names: Vec<&'static str>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Ok(head) = events.head_position().await {
            for name in &names {
                match read_models.checkpoint(name).await {
                    Ok(checkpoint) => {
                        let checkpoint = checkpoint.unwrap_or(0);
                        progress.publish(name, checkpoint, checkpoint >= head);
                    }
                    Err(err) => tracing::debug!(projection = name, error = %err, "checkpoint not read"),
                }
            }
        }
        if !pause_unless_stopped(&mut stop, EVERY).await {
            return;
        }
    }
}
