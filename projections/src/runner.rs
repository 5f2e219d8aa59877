//! The projection runner: feeds one projector from the log, batch by batch, and commits each
//! batch's documents together with the projection's checkpoint.
//!
//! Exactly once: the checkpoint and the documents land in one commit (or, on stores without
//! transactions, every document carries the last position applied and older events are
//! skipped), so a crash between batches replays at most the uncommitted batch. On any error the
//! runner waits and starts again from the last committed checkpoint: it never skips an event.

use crate::history::history_entry;
use crate::projector::{ProjectionError, Projector};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::{DocumentWrite, EventStore, EventStoreError, ReadModelError, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_application::subscription::Subscription;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Events read per batch.
pub const DEFAULT_BATCH: usize = 2000;
/// Pause before starting again after an error.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] EventStoreError),
    #[error(transparent)]
    ReadModel(#[from] ReadModelError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

pub struct ProjectionRunner {
    events: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModelStore>,
    projector: Arc<dyn Projector>,
    progress: ProjectionProgress,
    batch_size: usize,
}

impl ProjectionRunner {
    pub fn new(
        events: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModelStore>,
        projector: Arc<dyn Projector>,
        progress: ProjectionProgress,
    ) -> Self {
        ProjectionRunner {
            events,
            read_models,
            projector,
            progress,
            batch_size: DEFAULT_BATCH,
        }
    }

    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn name(&self) -> &'static str {
        self.projector.collection().name
    }

    /// Follows the log until `shutdown` turns true, restarting from the checkpoint on errors.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let outcome = tokio::select! {
                outcome = self.follow() => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            if let Err(err) = outcome {
                tracing::error!(projection = self.name(), error = %err, "projection stopped; restarting from its checkpoint");
                tokio::select! {
                    _ = tokio::time::sleep(ERROR_BACKOFF) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        }
    }

    /// Catch up, then follow live; returns only on error.
    async fn follow(&self) -> Result<(), RunnerError> {
        let mut subscription = self.subscribe().await?;
        loop {
            let batch = subscription.try_next_batch().await?;
            if batch.is_empty() {
                self.progress.publish(self.name(), subscription.position(), true);
                subscription.wait_for_more().await;
                continue;
            }
            self.apply(&batch).await?;
            self.progress.publish(self.name(), subscription.position(), false);
        }
    }

    async fn subscribe(&self) -> Result<Subscription, RunnerError> {
        let checkpoint = self.read_models.checkpoint(self.name()).await?.unwrap_or(0);
        self.progress.publish(self.name(), checkpoint, false);
        Ok(Subscription::new(self.events.clone(), checkpoint, self.batch_size))
    }

    /// Applies everything in the log now and returns the number of events read; for the CLI,
    /// tests and benchmarks.
    pub async fn catch_up(&self) -> Result<u64, RunnerError> {
        let mut subscription = self.subscribe().await?;
        let mut read = 0;
        loop {
            let batch = subscription.try_next_batch().await?;
            if batch.is_empty() {
                self.progress.publish(self.name(), subscription.position(), true);
                return Ok(read);
            }
            read += batch.len() as u64;
            self.apply(&batch).await?;
        }
    }

    /// Projects one batch and commits it with the checkpoint of its last event.
    pub async fn apply(&self, batch: &[EventEnvelope]) -> Result<(), RunnerError> {
        let Some(last) = batch.last() else { return Ok(()) };
        let relevant: Vec<&EventEnvelope> = batch.iter().filter(|e| self.projector.handles(&e.event_type)).collect();
        let collection = self.projector.collection().name;
        let mut ids: Vec<String> = relevant.iter().map(|e| e.aggregate_id().to_owned()).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = if ids.is_empty() {
            HashMap::new()
        } else {
            self.read_models.load_documents(collection, &ids).await?
        };
        let mut writes: HashMap<&str, DocumentWrite> = HashMap::with_capacity(ids.len());
        for event in relevant {
            let id = event.aggregate_id();
            let write = match writes.get_mut(id) {
                Some(write) => write,
                None => {
                    let (body, last_position) = match stored.get(id) {
                        Some(doc) => (doc.body.clone(), doc.last_position),
                        None => (Default::default(), 0),
                    };
                    writes.entry(id).or_insert(DocumentWrite {
                        collection,
                        id: id.to_owned(),
                        body,
                        last_position,
                        new_history: Vec::new(),
                    })
                }
            };
            if event.position <= write.last_position {
                continue; // applied before: a replay after a crash between commit and publish
            }
            let before = (write.last_position > 0).then_some(&write.body);
            let after = self.projector.project(before, event)?;
            write.new_history.push(history_entry(event, before, &after));
            write.body = after;
            write.last_position = event.position;
        }
        let writes = writes.into_values().filter(|w| !w.new_history.is_empty()).collect();
        self.read_models.commit(self.name(), last.position, writes).await?;
        Ok(())
    }
}
