//! The event store port: append with optimistic concurrency, read a stream, read the global
//! log, and learn when the log grows.
//!
//! Every adapter guarantees: versions are 1-based and gapless per stream; positions are
//! strictly increasing in commit order (dense on SQLite and PostgreSQL, sparse byte offsets on
//! KurrentDB, so a difference of positions is not a count of events: ask
//! [`EventStore::count_after`]) and a reader never sees a gap it would later find filled; an append is atomic; and an append retried with the same event ids returns the first
//! result instead of writing twice.

use crate::envelope::{EventEnvelope, NewEvent};
use async_trait::async_trait;
use serde::Serialize;
use std::fmt;
use tokio::sync::watch;

/// Lags are counted up to this many events; a reader further behind is reported at it.
pub const LAG_COUNT_LIMIT: u64 = 10_000;

/// What the writer believes about the stream it appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last version must be exactly this.
    Exact(u64),
    /// The stream must exist, at any version.
    StreamExists,
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` (None: no stream) satisfies this expectation.
    pub fn accepts(self, actual: Option<u64>) -> bool {
        match (self, actual) {
            (ExpectedVersion::Any, _) => true,
            (ExpectedVersion::NoStream, None) => true,
            (ExpectedVersion::Exact(n), Some(v)) => n == v,
            (ExpectedVersion::StreamExists, Some(_)) => true,
            _ => false,
        }
    }

    /// The expectation for an aggregate loaded at `version` (0: never written).
    pub fn for_loaded(version: u64) -> Self {
        if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(n) => write!(f, "version {n}"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendOutcome {
    /// The stream's version after the append (the version of its last event).
    pub version: u64,
    /// The global position of the first event appended.
    pub first_position: u64,
    /// The global position of the last event appended.
    pub last_position: u64,
    /// True when these events had been appended before and this is the first result again.
    pub deduplicated: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventStoreError {
    #[error("stream {stream} was expected at {expected} but is at {}", actual.map_or("no stream".to_string(), |v| format!("version {v}")))]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("event {event_id} was already stored in another append")]
    EventIdReused { event_id: uuid::Uuid },
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored event cannot be read: {0}")]
    Corrupt(String),
    /// A stored event whose place in the log can be read but whose content cannot (a payload
    /// that is no longer JSON, a malformed time): readers name it, auditors step past it.
    #[error("stored event at position {position} ({stream} version {version}) cannot be read: {reason}")]
    UnreadableEvent {
        stream: String,
        version: u64,
        position: u64,
        /// The hash stored with it, so a digest of stream heads can still be made.
        hash: String,
        reason: String,
    },
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically if the stream is where `expected` says.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, EventStoreError>;

    /// Up to `limit` events of `stream` with version ≥ `from_version`, in version order.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<EventEnvelope>, EventStoreError>;

    /// Up to `limit` events of the whole log with position > `after_position`, in order.
    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<EventEnvelope>, EventStoreError>;

    /// The position of the last committed event (0 when the log is empty).
    async fn head_position(&self) -> Result<u64, EventStoreError>;

    /// How many events have a position after `after_position`, counting no further than
    /// `at_most`: a reader's lag in events.
    async fn count_after(&self, after_position: u64, at_most: u64) -> Result<u64, EventStoreError>;

    /// A channel that carries the head position and changes on every commit.
    fn watch_head(&self) -> watch::Receiver<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn expectation() -> impl Strategy<Value = ExpectedVersion> {
        prop_oneof![
            Just(ExpectedVersion::Any),
            Just(ExpectedVersion::NoStream),
            Just(ExpectedVersion::StreamExists),
            (1u64..20).prop_map(ExpectedVersion::Exact),
        ]
    }

    proptest! {
        /// The expected-version rules, stated once and checked against every case: `Any`
        /// always, `NoStream` only for no stream, `StreamExists` for any stream, `Exact(n)`
        /// only at version n; and an aggregate loaded at a version expects exactly that.
        #[test]
        fn expected_versions_accept_exactly_their_streams(expected in expectation(), actual in proptest::option::of(1u64..20)) {
            let accepted = expected.accepts(actual);
            let rule = match expected {
                ExpectedVersion::Any => true,
                ExpectedVersion::NoStream => actual.is_none(),
                ExpectedVersion::StreamExists => actual.is_some(),
                ExpectedVersion::Exact(n) => actual == Some(n),
            };
            prop_assert_eq!(accepted, rule);
            let loaded = actual.unwrap_or(0);
            prop_assert!(ExpectedVersion::for_loaded(loaded).accepts(actual));
        }
    }
}
