//! How far each projection has applied the log, for read-your-writes and readiness.
//!
//! The projection runner publishes its checkpoint after each committed batch; a query that
//! carries a minimum position waits here, bounded, until its projection has reached it.

use crate::error::AppError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct ProjectionProgress {
    channels: Arc<Mutex<HashMap<&'static str, watch::Sender<Applied>>>>,
}

/// A projection's published state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The last position committed.
    pub position: u64,
    /// Whether the projection has once read to the head of the log.
    pub caught_up: bool,
}

impl ProjectionProgress {
    fn sender(&self, projection: &'static str) -> watch::Sender<Applied> {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        channels
            .entry(projection)
            .or_insert_with(|| watch::channel(Applied::default()).0)
            .clone()
    }

    /// Records that `projection` has committed everything up to `position`.
    pub fn publish(&self, projection: &'static str, position: u64, caught_up: bool) {
        self.sender(projection).send_modify(|applied| {
            applied.position = applied.position.max(position);
            applied.caught_up |= caught_up;
        });
    }

    pub fn applied(&self, projection: &'static str) -> Applied {
        *self.sender(projection).borrow()
    }

    /// Every projection known so far with its state.
    pub fn all(&self) -> Vec<(&'static str, Applied)> {
        let channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut all: Vec<_> = channels.iter().map(|(name, tx)| (*name, *tx.borrow())).collect();
        all.sort_by_key(|(name, _)| *name);
        all
    }

    /// Waits until `projection` has applied `position`, at most `timeout`.
    pub async fn wait_for(&self, projection: &'static str, position: u64, timeout: Duration) -> Result<(), AppError> {
        let mut rx = self.sender(projection).subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|applied| applied.position >= position)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(AppError::ProjectionLagging {
                projection,
                applied: self.applied(projection).position,
                wanted: position,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_returns_once_the_position_is_published() {
        let progress = ProjectionProgress::default();
        let waiter = {
            let progress = progress.clone();
            tokio::spawn(async move { progress.wait_for("p", 5, Duration::from_secs(5)).await })
        };
        progress.publish("p", 3, false);
        progress.publish("p", 5, true);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(
            progress.applied("p"),
            Applied {
                position: 5,
                caught_up: true
            }
        );
    }

    #[tokio::test]
    async fn waiting_too_long_reports_the_lag() {
        let progress = ProjectionProgress::default();
        progress.publish("p", 2, true);
        let err = progress.wait_for("p", 9, Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(
            err,
            AppError::ProjectionLagging {
                projection: "p",
                applied: 2,
                wanted: 9
            }
        );
    }
}
