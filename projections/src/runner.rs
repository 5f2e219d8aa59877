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
//! previous changes commit meanwhile (at most one commit in flight, committed in order). The
//! cache is the runner's own, and it is trusted only while the runner is the one writer of its
//! collection: every commit is fenced by the checkpoint it starts from, so a runner whose
//! projection another runner moved (another replica, or a rebuild) is refused, writes nothing,
//! and starts again from the committed checkpoint with an empty cache.
//!
//! While catching up, changes of several read batches gather before they commit, so a document
//! touched by many events is written once per commit and only its newest 50 operations are
//! written at all. As soon as the reader has nothing more waiting, what has gathered commits:
//! a live projection commits each small batch at once.

use crate::history::apply_patch;
use crate::projector::{ProjectionError, Projector};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::read_models::OPERATION_HISTORY_LIMIT;
use lablet_application::ports::{
    CommitFence, DocumentWrite, EventStore, EventStoreError, HistoryRecord, ReadModelError, ReadModelStore,
};
use lablet_application::progress::ProjectionProgress;
use lablet_application::shutdown::pause_unless_stopped;
use lablet_application::subscription::Subscription;
use lablet_application::trace_context::{continue_trace, TRACE_TARGET};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Events read per batch.
pub const DEFAULT_BATCH: usize = 10_000;
/// Events whose changes may gather in memory before they must commit.
const COMMIT_EVERY: usize = 200_000;
/// Documents the runner keeps in memory between batches before it forgets them all.
const DOCUMENT_CACHE: usize = 100_000;
/// Batches the reader may fetch ahead of the one being applied.
const READ_AHEAD: usize = 2;
/// Pause before starting again after an error.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Pause before starting again after another runner's commit refused this one's.
const FENCED_BACKOFF: Duration = Duration::from_millis(100);

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

/// Changes projected but not yet handed to a commit: per document, its newest operations.
#[derive(Default)]
struct Gathered {
    history: HashMap<String, VecDeque<HistoryRecord>>,
    events: usize,
    position: u64,
}

/// Where the runner's commits stand: the generation it read, and the checkpoint the next
/// commit starts from (the position of the last commit handed over).
#[derive(Clone, Copy)]
struct Committed {
    generation: u64,
    position: u64,
}

/// The batch being committed while the next one is projected.
struct InFlight {
    task: tokio::task::JoinHandle<Result<(), ReadModelError>>,
    position: u64,
}

impl RunnerError {
    /// The position of the event the error is about, if it is about one.
    pub fn position(&self) -> Option<u64> {
        match self {
            RunnerError::Projection(
                ProjectionError::Undecodable { position, .. } | ProjectionError::MissingDocument { position, .. },
            ) => Some(*position),
            _ => None,
        }
    }
}

type FeedReceiver = mpsc::Receiver<Result<Feed, EventStoreError>>;

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

    /// Where the runner publishes how far it got.
    pub fn progress(&self) -> ProjectionProgress {
        self.progress.clone()
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
            if let Err(RunnerError::ReadModel(ReadModelError::Superseded { current, .. })) = &outcome {
                tracing::info!(
                    projection = self.name(),
                    generation = current,
                    "a rebuild was swapped in; following the log from its checkpoint"
                );
                continue;
            }
            if let Err(RunnerError::ReadModel(ReadModelError::Fenced { found, .. })) = &outcome {
                tracing::info!(
                    projection = self.name(),
                    checkpoint = found,
                    "another runner committed this projection; following the log from its checkpoint"
                );
                if !pause_unless_stopped(&mut shutdown, FENCED_BACKOFF).await {
                    return;
                }
                continue;
            }
            if let Err(err) = outcome {
                tracing::error!(projection = self.name(), error = %err, "projection stopped; restarting from its checkpoint");
                // Parked where operators see it (`lablet projections status`); cleared by the
                // next successful commit. The event is not skipped.
                if let Err(record) = self
                    .read_models
                    .record_error(self.name(), err.position(), &err.to_string())
                    .await
                {
                    tracing::warn!(projection = self.name(), error = %record, "could not record the projection error");
                }
                if !pause_unless_stopped(&mut shutdown, ERROR_BACKOFF).await {
                    return;
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

    /// Projects batches from the reader, committing gathered changes while the next batches are
    /// projected. Without `live`, returns the number of events read once the log is exhausted.
    async fn consume(&self, live: bool) -> Result<u64, RunnerError> {
        let (mut feed, mut committed) = self.read_from_checkpoint(live).await?;
        let mut cache = DocumentCache::new();
        let mut gathered = Gathered::default();
        let mut in_flight: Option<InFlight> = None;
        let mut read = 0;
        loop {
            let next = if gathered.events == 0 {
                feed.recv().await
            } else {
                match feed.try_recv() {
                    Ok(next) => Some(next),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Nothing more waiting: commit what has gathered now.
                        in_flight = Some(
                            self.commit(&mut gathered, &cache, in_flight.take(), &mut committed)
                                .await?,
                        );
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match next.ok_or(RunnerError::ReaderStopped)?? {
                Feed::Batch(batch) => {
                    read += batch.len() as u64;
                    if cache.len() > DOCUMENT_CACHE {
                        // Forget only what has landed: a document of an uncommitted change must
                        // not be read back from the store before that change is committed.
                        let committing = self
                            .commit(&mut gathered, &cache, in_flight.take(), &mut committed)
                            .await?;
                        self.finish(Some(committing)).await?;
                        cache.clear();
                    }
                    self.project(&batch, &mut cache, &mut gathered).await?;
                    if gathered.events >= COMMIT_EVERY {
                        in_flight = Some(
                            self.commit(&mut gathered, &cache, in_flight.take(), &mut committed)
                                .await?,
                        );
                    }
                }
                Feed::CaughtUp(position) => {
                    if gathered.events > 0 {
                        in_flight = Some(
                            self.commit(&mut gathered, &cache, in_flight.take(), &mut committed)
                                .await?,
                        );
                    }
                    self.finish(in_flight.take()).await?;
                    self.progress.publish(self.name(), position, true);
                    if !live {
                        return Ok(read);
                    }
                }
            }
        }
    }

    /// Waits for the commit in flight, then starts committing what has gathered (and empties it).
    async fn commit(
        &self,
        gathered: &mut Gathered,
        cache: &DocumentCache,
        in_flight: Option<InFlight>,
        committed: &mut Committed,
    ) -> Result<InFlight, RunnerError> {
        self.finish(in_flight).await?;
        let collection = self.projector.collection().name;
        let writes: Vec<DocumentWrite> = gathered
            .history
            .drain()
            .filter_map(|(id, history)| {
                let (body, last_position) = cache.get(&id)?;
                Some(DocumentWrite {
                    collection,
                    id,
                    body: body.clone(),
                    last_position: *last_position,
                    new_history: history.into(),
                })
            })
            .collect();
        let position = gathered.position;
        gathered.events = 0;
        let fence = CommitFence::new(committed.generation, committed.position);
        committed.position = position;
        let (store, name) = (self.read_models.clone(), self.name());
        let task = tokio::spawn(async move { store.commit(name, fence, position, writes).await });
        Ok(InFlight { task, position })
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
    /// after catching up. The task ends when the receiver is dropped. Answers the feed and the
    /// checkpoint with the generation it belongs to.
    async fn read_from_checkpoint(&self, live: bool) -> Result<(FeedReceiver, Committed), RunnerError> {
        let generation = self.read_models.generation(self.name()).await?;
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
        let committed = Committed {
            generation,
            position: checkpoint,
        };
        Ok((receiver, committed))
    }

    /// Projects one batch and commits it with the checkpoint of its last event.
    pub async fn apply(&self, batch: &[EventEnvelope]) -> Result<(), RunnerError> {
        let mut gathered = Gathered::default();
        let mut cache = DocumentCache::new();
        let mut committed = Committed {
            generation: self.read_models.generation(self.name()).await?,
            position: self.read_models.checkpoint(self.name()).await?.unwrap_or(0),
        };
        self.project(batch, &mut cache, &mut gathered).await?;
        let committing = self.commit(&mut gathered, &cache, None, &mut committed).await?;
        self.finish(Some(committing)).await
    }

    /// Projects one batch into `cache` and gathers the operations it adds (at most the newest
    /// 50 per document: older ones would be trimmed anyway).
    async fn project(
        &self,
        batch: &[EventEnvelope],
        cache: &mut DocumentCache,
        gathered: &mut Gathered,
    ) -> Result<(), RunnerError> {
        let Some(last) = batch.last() else { return Ok(()) };
        let collection = self.projector.collection().name;
        let relevant: Vec<&EventEnvelope> = batch
            .iter()
            .filter(|e| e.aggregate_kind() == Some(self.projector.kind()))
            .collect();
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
        for event in relevant {
            let id = event.aggregate_id();
            let (body, last_position) = cache.entry(id.to_owned()).or_insert_with(|| (Map::new(), 0));
            if event.position <= *last_position {
                continue; // applied before: a replay after a crash between commit and publish
            }
            let is_new = *last_position == 0;
            let _traced = event.traceparent.as_deref().map(|traceparent| {
                let span = tracing::info_span!(
                    target: TRACE_TARGET,
                    "projection.apply",
                    projection = self.name(),
                    event_type = %event.event_type,
                    position = event.position,
                );
                if !span.is_disabled() {
                    continue_trace(&span, traceparent);
                }
                span.entered()
            });
            let patch = self.projector.project((!is_new).then_some(&*body), event)?;
            let entry = HistoryRecord::new(&apply_patch(body, is_new, patch, event))
                .map_err(|e| ProjectionError::BadDocument(e.to_string()))?;
            *last_position = event.position;
            let history = gathered.history.entry(id.to_owned()).or_default();
            if history.len() == OPERATION_HISTORY_LIMIT {
                history.pop_front();
            }
            history.push_back(entry);
        }
        gathered.events += batch.len();
        gathered.position = last.position;
        Ok(())
    }
}
