//! An in-memory model of the KurrentDB server behaviour the event store adapter relies on, so
//! the adapter's own rules (versions, retries, the hash chain, positions, the namespace filter)
//! run under the contract suite where no server can run. It is a stub of the server, not a
//! substitute for it: the same suite runs against a real node when
//! `LABLET_TEST_KURRENTDB_URL` is set.
//!
//! What it models, as the server documents and does it:
//! - revisions are 0-based; an append names the revision it expects (or no stream);
//! - an append whose events are already at the revisions after the expected one is a repeat:
//!   it succeeds, writes nothing and reports no position;
//! - positions are commit positions: byte offsets of each event's record in the log, so
//!   strictly increasing and sparse, and the log starts past its own header;
//! - the server writes events of its own (`$statsCollected` in `$stats-…` streams) into
//!   `$all`, between the clients' events;
//! - reads of `$all` from a position include the event at that position;
//! - a subscription to `$all` from the end carries the positions of later commits.

use async_trait::async_trait;
use chrono::Utc;
use futures_util::stream::{self, BoxStream, StreamExt};
use lablet_infrastructure::kurrentdb::log::{AllFilter, KurrentLog, LogError, LogEvent, ProposedEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Where the first event lands: the log's header and the server's first records come before.
const FIRST_POSITION: u64 = 1_024;
/// The bytes of a record besides its data and metadata.
const RECORD_OVERHEAD: u64 = 96;
/// The server records statistics of its own after every this many client appends.
const STATS_EVERY: usize = 3;

pub struct KurrentModel {
    log: Mutex<Log>,
    commits: broadcast::Sender<(String, String, u64)>,
    /// When set, events read from streams carry no `$all` position, as before server 22.10.
    hide_stream_positions: AtomicBool,
}

#[derive(Default)]
struct Log {
    events: Vec<LogEvent>,
    next_position: u64,
    appends: usize,
}

impl Log {
    fn last_revision(&self, stream: &str) -> Option<u64> {
        self.events
            .iter()
            .rev()
            .find(|e| e.stream == stream)
            .map(|e| e.revision)
    }

    fn write(
        &mut self,
        stream: &str,
        revision: u64,
        id: Uuid,
        event_type: &str,
        data: String,
        metadata: Vec<u8>,
    ) -> LogEvent {
        let position = self.next_position;
        self.next_position += RECORD_OVERHEAD + (data.len() + metadata.len() + stream.len()) as u64;
        let event = LogEvent {
            stream: stream.to_owned(),
            id,
            revision,
            event_type: event_type.to_owned(),
            data,
            metadata,
            position,
            created: Utc::now(),
        };
        self.events.push(event.clone());
        event
    }
}

impl Default for KurrentModel {
    fn default() -> Self {
        KurrentModel {
            log: Mutex::new(Log {
                next_position: FIRST_POSITION,
                ..Log::default()
            }),
            commits: broadcast::channel(4_096).0,
            hide_stream_positions: AtomicBool::new(false),
        }
    }
}

impl KurrentModel {
    /// Makes stream reads answer as servers before 22.10 do: without `$all` positions.
    pub fn hide_stream_positions(&self) {
        self.hide_stream_positions.store(true, Ordering::SeqCst);
    }

    /// Every event in the log, the server's own included.
    pub fn all_events(&self) -> Vec<LogEvent> {
        self.log.lock().unwrap().events.clone()
    }

    fn stream_view(&self, mut event: LogEvent) -> LogEvent {
        if self.hide_stream_positions.load(Ordering::SeqCst) {
            event.position = u64::MAX;
        }
        event
    }
}

#[async_trait]
impl KurrentLog for KurrentModel {
    async fn append(&self, stream: &str, expected: Option<u64>, events: Vec<ProposedEvent>) -> Result<u64, LogError> {
        let mut log = self.log.lock().unwrap();
        let first = expected.map_or(0, |revision| revision + 1);
        let stored: Vec<Uuid> = log
            .events
            .iter()
            .filter(|e| e.stream == stream && e.revision >= first)
            .take(events.len())
            .map(|e| e.id)
            .collect();
        if stored.len() == events.len() && stored.iter().zip(&events).all(|(s, e)| *s == e.id) {
            return Ok(0);
        }
        let current = log.last_revision(stream);
        if current != expected {
            return Err(LogError::WrongExpectedRevision { current });
        }
        let mut last = 0;
        for (revision, event) in (first..).zip(events) {
            let written = log.write(
                stream,
                revision,
                event.id,
                &event.event_type,
                event.data,
                event.metadata,
            );
            last = written.position;
            let _ = self
                .commits
                .send((written.stream, written.event_type, written.position));
        }
        log.appends += 1;
        if log.appends.is_multiple_of(STATS_EVERY) {
            let stats_stream = "$stats-127.0.0.1:2113";
            let revision = log.last_revision(stats_stream).map_or(0, |r| r + 1);
            let written = log.write(
                stats_stream,
                revision,
                Uuid::now_v7(),
                "$statsCollected",
                "{}".into(),
                b"{}".to_vec(),
            );
            let _ = self
                .commits
                .send((written.stream, written.event_type, written.position));
        }
        Ok(last)
    }

    async fn read_stream_forward(&self, stream: &str, from: u64, max: usize) -> Result<Vec<LogEvent>, LogError> {
        let events: Vec<LogEvent> = {
            let log = self.log.lock().unwrap();
            log.events
                .iter()
                .filter(|e| e.stream == stream && e.revision >= from)
                .take(max)
                .cloned()
                .collect()
        };
        Ok(events.into_iter().map(|e| self.stream_view(e)).collect())
    }

    async fn read_stream_backward(
        &self,
        stream: &str,
        from: Option<u64>,
        max: usize,
    ) -> Result<Vec<LogEvent>, LogError> {
        let events: Vec<LogEvent> = {
            let log = self.log.lock().unwrap();
            log.events
                .iter()
                .rev()
                .filter(|e| e.stream == stream && from.is_none_or(|from| e.revision <= from))
                .take(max)
                .cloned()
                .collect()
        };
        Ok(events.into_iter().map(|e| self.stream_view(e)).collect())
    }

    async fn read_all_forward(&self, from: u64, filter: &AllFilter, max: usize) -> Result<Vec<LogEvent>, LogError> {
        let log = self.log.lock().unwrap();
        Ok(log
            .events
            .iter()
            .filter(|e| e.position >= from && filter.passes(&e.stream, &e.event_type))
            .take(max)
            .cloned()
            .collect())
    }

    async fn last_in_all(&self, filter: &AllFilter) -> Result<Option<LogEvent>, LogError> {
        let log = self.log.lock().unwrap();
        Ok(log
            .events
            .iter()
            .rev()
            .find(|e| filter.passes(&e.stream, &e.event_type))
            .cloned())
    }

    async fn follow_all(&self, filter: &AllFilter) -> Result<BoxStream<'static, Result<u64, LogError>>, LogError> {
        let commits = self.commits.subscribe();
        let filter = filter.clone();
        Ok(stream::unfold((commits, filter), |(mut commits, filter)| async move {
            loop {
                match commits.recv().await {
                    Ok((stream, event_type, position)) if filter.passes(&stream, &event_type) => {
                        return Some((Ok(position), (commits, filter)))
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((
                            Err(LogError::Unavailable("the subscription fell behind".into())),
                            (commits, filter),
                        ))
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed())
    }
}
