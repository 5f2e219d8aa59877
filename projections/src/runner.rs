//! The projection runner: feeds one projector from the log, batch by batch, and commits each
//! batch's documents together with the projection's checkpoint.
//!
//! Exactly once: the checkpoint and the documents land in one commit (or, on stores without
//! transactions, every document carries the last position applied and older events are
//! skipped), so a crash between batches replays at most the uncommitted batch. On any error the
//! runner waits and starts again from the last committed checkpoint: it never skips an event.
//!
//! Three stages overlap: a reader task fetches the next batch from the log, the runner projects
//! the current one against an in-memory cache of the documents it touched recently, and the
//! previous batch commits meanwhile (at most one commit in flight, committed in order). The
//! cache is the runner's own: it is the only writer of its collection, and a restart after an
//! error starts from the committed checkpoint with an empty cache.

use crate::history::apply_patch;
use crate::projector::{ProjectionError, Projector};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::{DocumentWrite, EventStore, EventStoreError, ReadModelError, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_application::subscription::Subscription;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Events read per batch.
pub const DEFAULT_BATCH: usize = 20_000;
/// Documents the runner keeps in memory between batches before it forgets them all.
const DOCUMENT_CACHE: usize = 100_000;
/// Batches the reader may fetch ahead of the one being applied.
const READ_AHEAD: usize = 2;
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
    #[error("the log reader stopped")]
    ReaderStopped,
    #[error("a commit task failed: {0}")]
    CommitTask(String),
}

/// Documents as the runner last left them, whether or not their commit has landed yet.
type DocumentCache = HashMap<String, (Map<String, Value>, u64)>;

/// The batch being committed while the next one is projected.
struct InFlight {
    task: tokio::task::JoinHandle<Result<(), ReadModelError>>,
    position: u64,
}

/// What the reader task hands the runner.
enum Feed {
    Batch(Vec<EventEnvelope>),
    /// The log has nothing after this position (for now).
    CaughtUp(u64),
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
        self.consume(true).await.map(|_| ())
    }

    /// Applies everything in the log now and returns the number of events read; for the CLI,
    /// tests and benchmarks.
    pub async fn catch_up(&self) -> Result<u64, RunnerError> {
        self.consume(false).await
    }

    /// Projects batches from the reader, committing each while the next is projected. Without
    /// `live`, returns the number of events read once the log is exhausted.
    async fn consume(&self, live: bool) -> Result<u64, RunnerError> {
        let mut feed = self.read_from_checkpoint(live).await?;
        let mut cache = DocumentCache::new();
        let mut in_flight: Option<InFlight> = None;
        let mut read = 0;
        loop {
            match feed.recv().await.ok_or(RunnerError::ReaderStopped)?? {
                Feed::Batch(batch) => {
                    read += batch.len() as u64;
                    if cache.len() > DOCUMENT_CACHE {
                        // Forget only what has landed: a document of the commit in flight must
                        // not be read back from the store before that commit is done.
                        self.finish(in_flight.take()).await?;
                        cache.clear();
                    }
                    let writes = self.project(&batch, &mut cache).await?;
                    self.finish(in_flight.take()).await?;
                    let position = batch.last().map_or(0, |e| e.position);
                    let (store, name) = (self.read_models.clone(), self.name());
                    let task = tokio::spawn(async move { store.commit(name, position, writes).await });
                    in_flight = Some(InFlight { task, position });
                }
                Feed::CaughtUp(position) => {
                    self.finish(in_flight.take()).await?;
                    self.progress.publish(self.name(), position, true);
                    if !live {
                        return Ok(read);
                    }
                }
            }
        }
    }

    /// Waits for the commit in flight and publishes its position.
    async fn finish(&self, in_flight: Option<InFlight>) -> Result<(), RunnerError> {
        if let Some(InFlight { task, position }) = in_flight {
            task.await.map_err(|e| RunnerError::CommitTask(e.to_string()))??;
            self.progress.publish(self.name(), position, false);
        }
        Ok(())
    }

    /// Starts a reader task at the committed checkpoint; with `live` it keeps following the log
    /// after catching up. The task ends when the receiver is dropped.
    async fn read_from_checkpoint(
        &self,
        live: bool,
    ) -> Result<mpsc::Receiver<Result<Feed, EventStoreError>>, RunnerError> {
        let checkpoint = self.read_models.checkpoint(self.name()).await?.unwrap_or(0);
        self.progress.publish(self.name(), checkpoint, false);
        let mut subscription = Subscription::new(self.events.clone(), checkpoint, self.batch_size);
        let (feed, receiver) = mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            loop {
                let next = match subscription.try_next_batch().await {
                    Ok(batch) if batch.is_empty() => Ok(Feed::CaughtUp(subscription.position())),
                    Ok(batch) => Ok(Feed::Batch(batch)),
                    Err(err) => Err(err),
                };
                let stop = next.is_err() || (!live && matches!(next, Ok(Feed::CaughtUp(_))));
                let waiting = matches!(next, Ok(Feed::CaughtUp(_)));
                if feed.send(next).await.is_err() || stop {
                    return;
                }
                if waiting {
                    tokio::select! {
                        _ = subscription.wait_for_more() => {}
                        _ = feed.closed() => return,
                    }
                }
            }
        });
        Ok(receiver)
    }

    /// Projects one batch and commits it with the checkpoint of its last event.
    pub async fn apply(&self, batch: &[EventEnvelope]) -> Result<(), RunnerError> {
        let Some(last) = batch.last() else { return Ok(()) };
        let writes = self.project(batch, &mut DocumentCache::new()).await?;
        self.read_models.commit(self.name(), last.position, writes).await?;
        Ok(())
    }

    /// The document writes of one batch, each document once with all its new operations;
    /// `cache` holds the documents as this runner last left them and is brought up to date.
    async fn project(
        &self,
        batch: &[EventEnvelope],
        cache: &mut DocumentCache,
    ) -> Result<Vec<DocumentWrite>, RunnerError> {
        let collection = self.projector.collection().name;
        let relevant: Vec<&EventEnvelope> = batch.iter().filter(|e| self.projector.handles(&e.event_type)).collect();
        let mut missing: Vec<String> = relevant
            .iter()
            .map(|e| e.aggregate_id())
            .filter(|id| !cache.contains_key(*id))
            .map(str::to_owned)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let stored = self.read_models.load_documents(collection, &missing).await?;
            for (id, document) in stored {
                cache.insert(id, (document.body, document.last_position));
            }
        }
        let mut history: HashMap<&str, Vec<_>> = HashMap::new();
        for event in relevant {
            let id = event.aggregate_id();
            let (body, last_position) = cache.entry(id.to_owned()).or_insert_with(|| (Map::new(), 0));
            if event.position <= *last_position {
                continue; // applied before: a replay after a crash between commit and publish
            }
            let is_new = *last_position == 0;
            let patch = self.projector.project((!is_new).then_some(&*body), event)?;
            history
                .entry(id)
                .or_default()
                .push(apply_patch(body, is_new, patch, event));
            *last_position = event.position;
        }
        Ok(history
            .into_iter()
            .map(|(id, new_history)| {
                let (body, last_position) = &cache[id];
                DocumentWrite {
                    collection,
                    id: id.to_owned(),
                    body: body.clone(),
                    last_position: *last_position,
                    new_history,
                }
            })
            .collect())
    }
}
