//! Rebuilding a projection on any read-model store: a runner of its own replays the whole log
//! into a staging area beside the live read models while the live projection keeps serving.
//! Then the rebuild is either swapped in, once it has caught up with the live one, or compared
//! with the live read model document by document, changing nothing.
//!
//! A rebuild reads the log and writes read models only: it never touches the outbox relays'
//! checkpoints, so it can never make a CloudEvent be sent again.

use crate::runner::RunnerError;
use crate::{ProjectionRunner, Projector};
use lablet_application::ports::{EventStore, ListQuery, ReadModelError, ReadModelRebuilds, ReadModelStore};
use lablet_application::ports::{Staging, SwapOutcome};
use lablet_application::progress::ProjectionProgress;
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Documents compared per page.
const PAGE: usize = 200;
/// Catch-up rounds a swap may take before it gives up (the log grows faster than the rebuild).
const SWAP_ROUNDS: usize = 20;
/// The pause between two swap rounds.
const SWAP_PAUSE: Duration = Duration::from_millis(20);

/// What to do with a replayed projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Swap it in for the live one.
    Swap,
    /// Compare it with the live one; change nothing.
    Verify,
}

/// What the replay did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replayed {
    pub events: u64,
    pub seconds: f64,
}

impl Replayed {
    /// Events replayed per second.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// How a rebuild ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RebuildOutcome {
    /// The rebuilt read model is live.
    Swapped {
        replayed: Replayed,
        position: u64,
        generation: u64,
        documents: u64,
    },
    /// The rebuild was compared with the live read model: `differing` names the documents
    /// that differ or exist on one side only.
    Compared {
        replayed: Replayed,
        compared: u64,
        differing: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    ReadModel(#[from] ReadModelError),
    #[error("{0}: the rebuild committed nothing; is the log empty?")]
    NothingRebuilt(&'static str),
    #[error("{0}: the live projection stayed ahead of the rebuild for {SWAP_ROUNDS} rounds; nothing was swapped")]
    StayedBehind(&'static str),
}

/// Rebuilds projections of one deployment.
pub struct Rebuild {
    events: Arc<dyn EventStore>,
    live: Arc<dyn ReadModelStore>,
    rebuilds: Arc<dyn ReadModelRebuilds>,
}

impl Rebuild {
    pub fn new(
        events: Arc<dyn EventStore>,
        live: Arc<dyn ReadModelStore>,
        rebuilds: Arc<dyn ReadModelRebuilds>,
    ) -> Self {
        Rebuild { events, live, rebuilds }
    }

    /// Replays `projector` into a new staging area (reporting to `progress` as it goes), then
    /// swaps it in or compares it; the staging area is deleted in every case.
    pub async fn run(
        &self,
        projector: Arc<dyn Projector>,
        finish: Finish,
        progress: ProjectionProgress,
    ) -> Result<RebuildOutcome, RebuildError> {
        let name = projector.collection().name;
        let staging = self.rebuilds.stage(name).await?;
        let runner = ProjectionRunner::new(self.events.clone(), staging.store.clone(), projector, progress);
        let outcome = self.replay_and_finish(&runner, &staging, finish).await;
        let discarded = self.rebuilds.discard(staging).await;
        let outcome = outcome?;
        discarded?;
        Ok(outcome)
    }

    async fn replay_and_finish(
        &self,
        runner: &ProjectionRunner,
        staging: &Staging,
        finish: Finish,
    ) -> Result<RebuildOutcome, RebuildError> {
        let name = runner.name();
        let started = Instant::now();
        let events = runner.catch_up().await?;
        let replayed = Replayed {
            events,
            seconds: started.elapsed().as_secs_f64(),
        };
        match finish {
            Finish::Swap => {
                let (position, generation, documents) = self.swap(runner, staging).await?;
                Ok(RebuildOutcome::Swapped {
                    replayed,
                    position,
                    generation,
                    documents,
                })
            }
            Finish::Verify => {
                let (compared, differing) = compare(self.live.as_ref(), staging.store.as_ref(), name).await?;
                Ok(RebuildOutcome::Compared {
                    replayed,
                    compared,
                    differing,
                })
            }
        }
    }

    /// Catches the rebuild up with the log and swaps it in; tries again while the live
    /// projection is ahead of it. Answers the position, generation and documents swapped in.
    async fn swap(&self, runner: &ProjectionRunner, staging: &Staging) -> Result<(u64, u64, u64), RebuildError> {
        let name = runner.name();
        for _ in 0..SWAP_ROUNDS {
            runner.catch_up().await?;
            match self.rebuilds.swap_in(staging, name).await? {
                SwapOutcome::Swapped {
                    position,
                    generation,
                    documents,
                } => return Ok((position, generation, documents)),
                SwapOutcome::Behind { .. } => tokio::time::sleep(SWAP_PAUSE).await,
                SwapOutcome::NothingRebuilt => return Err(RebuildError::NothingRebuilt(name)),
            }
        }
        Err(RebuildError::StayedBehind(name))
    }
}

/// One page of documents (with history) after `after`, parsed, as (id, document).
async fn page(
    store: &dyn ReadModelStore,
    collection: &'static str,
    after: Option<String>,
) -> Result<(Vec<(String, Value)>, Option<String>), ReadModelError> {
    let query = ListQuery {
        filters: Vec::new(),
        limit: PAGE,
        after_id: after,
        include_history: true,
    };
    let page = store.list(collection, &query).await?;
    let mut documents = Vec::with_capacity(page.items.len());
    for raw in page.items {
        let document: Value = serde_json::from_str(raw.get()).map_err(|e| ReadModelError::Corrupt(e.to_string()))?;
        let id = document["id"].as_str().unwrap_or_default().to_owned();
        documents.push((id, document));
    }
    // Popped from the back: smallest id last.
    documents.reverse();
    Ok((documents, page.next_cursor))
}

/// One side of a comparison, read a page at a time in id order.
struct Pages<'a> {
    store: &'a dyn ReadModelStore,
    collection: &'static str,
    /// The current page, smallest id last.
    documents: Vec<(String, Value)>,
    next: Option<String>,
}

impl<'a> Pages<'a> {
    async fn open(store: &'a dyn ReadModelStore, collection: &'static str) -> Result<Pages<'a>, ReadModelError> {
        let (documents, next) = page(store, collection, None).await?;
        Ok(Pages {
            store,
            collection,
            documents,
            next,
        })
    }

    /// The id of the next document, reading the next page when this one is used up.
    async fn peek(&mut self) -> Result<Option<&str>, ReadModelError> {
        if self.documents.is_empty() {
            if let Some(after) = self.next.take() {
                (self.documents, self.next) = page(self.store, self.collection, Some(after)).await?;
            }
        }
        Ok(self.documents.last().map(|(id, _)| id.as_str()))
    }

    fn pop(&mut self) -> Option<(String, Value)> {
        self.documents.pop()
    }
}

/// Walks both collections in id order; answers how many documents were compared and the ids
/// that differ or exist on one side only.
async fn compare(
    live: &dyn ReadModelStore,
    rebuilt: &dyn ReadModelStore,
    collection: &'static str,
) -> Result<(u64, Vec<String>), ReadModelError> {
    let mut live = Pages::open(live, collection).await?;
    let mut rebuilt = Pages::open(rebuilt, collection).await?;
    let (mut compared, mut differing) = (0, Vec::new());
    loop {
        let order = match (live.peek().await?, rebuilt.peek().await?) {
            (None, None) => break,
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
        };
        compared += 1;
        match order {
            Ordering::Equal => {
                if let (Some(x), Some(y)) = (live.pop(), rebuilt.pop()) {
                    if x.1 != y.1 {
                        differing.push(x.0);
                    }
                }
            }
            // On one side only: missing from the other.
            Ordering::Less => differing.extend(live.pop().map(|d| d.0)),
            Ordering::Greater => differing.extend(rebuilt.pop().map(|d| d.0)),
        }
    }
    Ok((compared, differing))
}
