//! Catch-up-then-live reading of the global log, shared by every subscriber (projections,
//! relays).
//!
//! A subscription reads pages after its position until the log is exhausted, then sleeps on the
//! store's head channel, which every commit wakes. A long fallback timeout covers writers in
//! other processes whose commits this process cannot hear.

use crate::envelope::EventEnvelope;
use crate::ports::{EventStore, EventStoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a live subscription sleeps before looking again without a wake-up.
const FALLBACK_POLL: Duration = Duration::from_secs(2);

pub struct Subscription {
    store: Arc<dyn EventStore>,
    head: watch::Receiver<u64>,
    position: u64,
    page_size: usize,
}

impl Subscription {
    /// A subscription to every event after `position`.
    pub fn new(store: Arc<dyn EventStore>, position: u64, page_size: usize) -> Self {
        let head = store.watch_head();
        Subscription {
            store,
            head,
            position,
            page_size: page_size.max(1),
        }
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next page of events, waiting for new commits when caught up.
    pub async fn next_batch(&mut self) -> Result<Vec<EventEnvelope>, EventStoreError> {
        loop {
            let page = self.store.read_all(self.position, self.page_size).await?;
            if let Some(last) = page.last() {
                self.position = last.position;
                return Ok(page);
            }
            self.wait_for_more().await;
        }
    }

    /// Returns when the log may have grown past the current position: at once if a commit
    /// landed since the last read, otherwise on the next commit (or the fallback timeout).
    pub async fn wait_for_more(&mut self) {
        let position = self.position;
        let _ = tokio::time::timeout(FALLBACK_POLL, self.head.wait_for(|head| *head > position)).await;
    }

    /// The events after the current position that exist now, without waiting (empty when
    /// caught up).
    pub async fn try_next_batch(&mut self) -> Result<Vec<EventEnvelope>, EventStoreError> {
        let page = self.store.read_all(self.position, self.page_size).await?;
        if let Some(last) = page.last() {
            self.position = last.position;
        }
        Ok(page)
    }
}
