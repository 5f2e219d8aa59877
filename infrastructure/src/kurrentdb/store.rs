//! The event store port over a KurrentDB log (see [`super`] for the rules it keeps).

use super::log::{AllFilter, KurrentLog, LogError, LogEvent};
use super::mapping::{self, envelope, stored_hash, version_of};
use super::target::Namespace;
use crate::append_rules::{invalid_append, judge_stored, StoredAt};
use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, Utc};
use futures_util::StreamExt;
use lablet_application::envelope::{EventEnvelope, NewEvent};
use lablet_application::ports::{AppendOutcome, EventStore, EventStoreError, ExpectedVersion};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use uuid::Uuid;

/// Reads of the stream's head before an append gives up on a stream that keeps moving.
const MAX_ATTEMPTS: usize = 64;
/// Events read per page when looking backwards through a stream for a retried append.
const RETRY_SCAN_PAGE: usize = 32;
/// How far the server's clock may be behind the clock that made an event id: events recorded
/// earlier than an id's time minus this cannot hold that id.
const CLOCK_ALLOWANCE: Span = Span::minutes(2);
/// Events read per page when counting.
const COUNT_PAGE: usize = 1_000;
/// How often the head is read when the subscription carries no news.
const FALLBACK_POLL: Duration = Duration::from_secs(5);
/// The pause before subscribing again after the subscription failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct KurrentDbEventStore {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn KurrentLog>,
    namespace: Namespace,
    filter: AllFilter,
    head: watch::Sender<u64>,
    follower: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn store_error(error: LogError) -> EventStoreError {
    match error {
        LogError::Malformed(message) => EventStoreError::Corrupt(message),
        other => EventStoreError::Unavailable(other.to_string()),
    }
}

fn announce(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        if moved {
            *current = position;
        }
        moved
    });
}

/// The earliest time an event holding one of `events`' ids can have been recorded; `None` when
/// an id does not carry its time (not a UUID v7), so no time bounds the search.
fn earliest_record(events: &[NewEvent]) -> Option<DateTime<Utc>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for event in events {
        if event.event_id.get_version_num() != 7 {
            return None;
        }
        let (seconds, nanos) = event.event_id.get_timestamp()?.to_unix();
        let made = DateTime::from_timestamp(i64::try_from(seconds).ok()?, nanos)?;
        earliest = Some(earliest.map_or(made, |e| e.min(made)));
    }
    earliest.map(|made| made - CLOCK_ALLOWANCE)
}

impl KurrentDbEventStore {
    /// The store over `log`, with Lablet's streams in `namespace`; reads the head (so an
    /// unreachable server fails here) and starts following it.
    pub async fn over(log: Arc<dyn KurrentLog>, namespace: Namespace) -> Result<Self, EventStoreError> {
        let filter = namespace.filter();
        let position = log
            .last_in_all(&filter)
            .await
            .map_err(store_error)?
            .map_or(0, |e| e.position);
        let head = watch::channel(position).0;
        let follower = tokio::spawn(follow(log.clone(), filter.clone(), head.clone())).abort_handle();
        Ok(KurrentDbEventStore {
            inner: Arc::new(Inner {
                log,
                namespace,
                filter,
                head,
                follower,
            }),
        })
    }

    fn lablet_envelope(&self, event: LogEvent) -> Result<EventEnvelope, EventStoreError> {
        let stream = self
            .inner
            .namespace
            .lablet_stream(&event.stream)
            .ok_or_else(|| EventStoreError::Corrupt(format!("stream {} is not Lablet's", event.stream)))?
            .to_owned();
        envelope(event, stream)
    }

    /// The first outcome again if `events` are stored in `stream` already, or the id reused.
    /// `recent` is the stream's newest events, newest first, as read before the append.
    async fn find_retry(
        &self,
        stream: &str,
        server_stream: &str,
        recent: &[LogEvent],
        events: &[NewEvent],
    ) -> Result<Option<Result<AppendOutcome, EventStoreError>>, EventStoreError> {
        let Some(head) = recent.first() else {
            return Ok(None);
        };
        let since = earliest_record(events);
        if since.is_some_and(|since| head.created < since) {
            return Ok(None);
        }
        let mut found: HashMap<Uuid, StoredAt> = HashMap::new();
        let mut page = recent.to_vec();
        loop {
            let mut reached_older = false;
            for event in &page {
                if since.is_some_and(|since| event.created < since) {
                    reached_older = true;
                    break;
                }
                if events.iter().any(|e| e.event_id == event.id) {
                    found.insert(
                        event.id,
                        StoredAt {
                            stream: stream.to_owned(),
                            version: version_of(event.revision),
                            position: event.position,
                        },
                    );
                }
            }
            let oldest = page.last().map_or(0, |e| e.revision);
            if reached_older || found.len() == events.len() || page.len() < RETRY_SCAN_PAGE || oldest == 0 {
                break;
            }
            page = self
                .inner
                .log
                .read_stream_backward(server_stream, Some(oldest - 1), RETRY_SCAN_PAGE)
                .await
                .map_err(store_error)?;
        }
        let lookup: Vec<_> = events
            .iter()
            .map(|e| (e.event_id, found.get(&e.event_id).cloned()))
            .collect();
        Ok(judge_stored(stream, &lookup))
    }

    /// The outcome of `events` appended after version `base`; `last_position` is what the
    /// server answered (0: it recognised the append as one it holds).
    async fn landed(
        &self,
        server_stream: &str,
        base: u64,
        events: &[NewEvent],
        last_position: u64,
    ) -> Result<AppendOutcome, EventStoreError> {
        let count = events.len() as u64;
        if count == 1 && last_position != 0 {
            announce(&self.inner.head, last_position);
            return Ok(AppendOutcome {
                version: base + 1,
                first_position: last_position,
                last_position,
                deduplicated: false,
            });
        }
        let written = self
            .inner
            .log
            .read_stream_forward(server_stream, base, events.len())
            .await
            .map_err(store_error)?;
        let same = written.len() == events.len() && written.iter().zip(events).all(|(w, e)| w.id == e.event_id);
        let (Some(first), Some(last), true) = (written.first(), written.last(), same) else {
            return Err(EventStoreError::Corrupt(format!(
                "the events read back from {server_stream} after version {base} are not those appended"
            )));
        };
        announce(&self.inner.head, last.position);
        Ok(AppendOutcome {
            version: base + count,
            first_position: first.position,
            last_position: last.position,
            deduplicated: last_position == 0,
        })
    }
}

#[async_trait]
impl EventStore for KurrentDbEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError> {
        if let Some(invalid) = invalid_append(stream, &events) {
            return Err(invalid);
        }
        let server_stream = self.inner.namespace.server_stream(stream);
        for _ in 0..MAX_ATTEMPTS {
            let recent = self
                .inner
                .log
                .read_stream_backward(&server_stream, None, RETRY_SCAN_PAGE)
                .await
                .map_err(store_error)?;
            if let Some(outcome) = self.find_retry(stream, &server_stream, &recent, &events).await? {
                return outcome;
            }
            let head = recent.first();
            let actual = head.map(|e| version_of(e.revision));
            if !expected.accepts(actual) {
                return Err(EventStoreError::WrongExpectedVersion {
                    stream: stream.to_owned(),
                    expected,
                    actual,
                });
            }
            let base = actual.unwrap_or(0);
            let mut previous = head.map(stored_hash).transpose()?;
            let mut proposed = Vec::with_capacity(events.len());
            for (offset, event) in (1..).zip(&events) {
                let (event, hash) = mapping::proposed(stream, base + offset, previous.as_deref(), event)?;
                previous = Some(hash);
                proposed.push(event);
            }
            // The exact revision read is the expectation: the chain was built on that head, so
            // a writer that moved it first makes this append fail instead of forking the chain.
            match self
                .inner
                .log
                .append(&server_stream, head.map(|e| e.revision), proposed)
                .await
            {
                Ok(last_position) => return self.landed(&server_stream, base, &events, last_position).await,
                Err(LogError::WrongExpectedRevision { .. }) => continue,
                Err(LogError::Malformed(message)) => return Err(EventStoreError::InvalidAppend(message)),
                Err(other) => return Err(store_error(other)),
            }
        }
        Err(EventStoreError::Unavailable(format!(
            "stream {stream} moved under {MAX_ATTEMPTS} attempts in a row"
        )))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<EventEnvelope>, EventStoreError> {
        let from = mapping::revision_of(from_version.max(1));
        let server_stream = self.inner.namespace.server_stream(stream);
        let events = self
            .inner
            .log
            .read_stream_forward(&server_stream, from, limit)
            .await
            .map_err(store_error)?;
        events
            .into_iter()
            .map(|event| envelope(event, stream.to_owned()))
            .collect()
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<EventEnvelope>, EventStoreError> {
        // A read from a position includes the event there, which the caller has seen.
        let events = self
            .inner
            .log
            .read_all_forward(after_position, &self.inner.filter, limit.saturating_add(1))
            .await
            .map_err(store_error)?;
        events
            .into_iter()
            .filter(|event| event.position > after_position)
            .take(limit)
            .map(|event| self.lablet_envelope(event))
            .collect()
    }

    async fn head_position(&self) -> Result<u64, EventStoreError> {
        let last = self
            .inner
            .log
            .last_in_all(&self.inner.filter)
            .await
            .map_err(store_error)?;
        let position = last.map_or(0, |e| e.position);
        announce(&self.inner.head, position);
        Ok(position)
    }

    async fn count_after(&self, after_position: u64, at_most: u64) -> Result<u64, EventStoreError> {
        // Positions are byte offsets here: the events have to be counted.
        let (mut counted, mut after) = (0u64, after_position);
        while counted < at_most {
            let page = self
                .inner
                .log
                .read_all_forward(after, &self.inner.filter, COUNT_PAGE + 1)
                .await
                .map_err(store_error)?;
            let newer: Vec<u64> = page.iter().map(|e| e.position).filter(|p| *p > after).collect();
            let Some(last) = newer.last() else {
                break;
            };
            counted += newer.len() as u64;
            after = *last;
        }
        Ok(counted.min(at_most))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }
}

/// Keeps `head` at the last position of the log: a subscription to `$all` carries every
/// commit, from this process or another; a slow poll covers a subscription that goes quiet.
async fn follow(log: Arc<dyn KurrentLog>, filter: AllFilter, head: watch::Sender<u64>) {
    loop {
        match log.follow_all(&filter).await {
            Ok(mut positions) => {
                // What landed before the subscription started.
                if let Ok(Some(last)) = log.last_in_all(&filter).await {
                    announce(&head, last.position);
                }
                loop {
                    tokio::select! {
                        next = positions.next() => match next {
                            Some(Ok(position)) => announce(&head, position),
                            Some(Err(error)) => {
                                tracing::warn!(%error, "the KurrentDB subscription to $all failed; subscribing again");
                                break;
                            }
                            None => break,
                        },
                        _ = tokio::time::sleep(FALLBACK_POLL) => {
                            if let Ok(Some(last)) = log.last_in_all(&filter).await {
                                announce(&head, last.position);
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot subscribe to KurrentDB's $all"),
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}
