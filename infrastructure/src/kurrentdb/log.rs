//! The part of a KurrentDB server the event store adapter uses, as a trait: append with an
//! expected revision, read a stream either way, read and follow `$all` through a filter.
//!
//! The adapter's rules (versions, idempotency, the hash chain, positions) are written once
//! against this trait. [`super::client_log::ClientLog`] implements it with the official client;
//! the test suite also runs the adapter over an in-memory model of the server's semantics, so
//! those rules are exercised where no server can run.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use uuid::Uuid;

/// An event as the server keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// The stream name on the server (with the namespace, if any).
    pub stream: String,
    pub id: Uuid,
    /// 0-based.
    pub revision: u64,
    pub event_type: String,
    /// The JSON payload, exactly as appended.
    pub data: String,
    /// The user metadata (JSON), exactly as appended.
    pub metadata: Vec<u8>,
    /// The commit position in `$all`. For events not written in an explicit transaction (the
    /// adapter never uses those) it equals the prepare position, so it is unique per event.
    pub position: u64,
    /// When the server wrote it.
    pub created: DateTime<Utc>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedEvent {
    pub id: Uuid,
    pub event_type: String,
    /// JSON text.
    pub data: String,
    /// JSON text of the user metadata.
    pub metadata: Vec<u8>,
}

/// Which events of `$all` a read or a subscription sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllFilter {
    /// Streams whose name starts with this prefix (a namespace and its separator).
    StreamPrefix(String),
    /// Every event whose type does not start with `$` (the server's own events).
    ExcludeSystemEvents,
}

impl AllFilter {
    /// Whether an event of `stream` and `event_type` passes.
    pub fn passes(&self, stream: &str, event_type: &str) -> bool {
        match self {
            AllFilter::StreamPrefix(prefix) => stream.starts_with(prefix.as_str()),
            AllFilter::ExcludeSystemEvents => !event_type.starts_with('$'),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogError {
    /// The stream was not at the expected revision; `current` is where it is (None: no stream).
    #[error("wrong expected revision; the stream is at {current:?}")]
    WrongExpectedRevision { current: Option<u64> },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Malformed(String),
}

#[async_trait]
pub trait KurrentLog: Send + Sync + 'static {
    /// Appends `events` if the stream's last revision is `expected` (`None`: no stream yet);
    /// answers the commit position of the last event, or 0 when the server reports none (an
    /// append it recognised as a repeat of one it holds).
    async fn append(&self, stream: &str, expected: Option<u64>, events: Vec<ProposedEvent>) -> Result<u64, LogError>;

    /// Up to `max` events of `stream` from revision `from` on (none for a missing stream).
    async fn read_stream_forward(&self, stream: &str, from: u64, max: usize) -> Result<Vec<LogEvent>, LogError>;

    /// Up to `max` events of `stream` from revision `from` (None: its last event) backwards.
    async fn read_stream_backward(
        &self,
        stream: &str,
        from: Option<u64>,
        max: usize,
    ) -> Result<Vec<LogEvent>, LogError>;

    /// Up to `max` events of `$all` passing `filter`, from position `from` (0: the start)
    /// forwards; an event at exactly `from` is included.
    async fn read_all_forward(&self, from: u64, filter: &AllFilter, max: usize) -> Result<Vec<LogEvent>, LogError>;

    /// The last event of `$all` passing `filter`.
    async fn last_in_all(&self, filter: &AllFilter) -> Result<Option<LogEvent>, LogError>;

    /// The positions of events passing `filter` committed from now on, until the connection
    /// fails.
    async fn follow_all(&self, filter: &AllFilter) -> Result<BoxStream<'static, Result<u64, LogError>>, LogError>;
}
