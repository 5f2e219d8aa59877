//! The outbox store port: where each relay keeps its checkpoint and the events it parked.
//!
//! The event log itself is the outbox; a relay only needs to remember how far it got, which
//! subjects it delivered beyond that (so that a restart does not send them again), and which
//! events it gave up on. Everything is kept per sink (`http`, `nats`), so every sink receives
//! every event at least once whatever the others do.
//!
//! A relay runs under its sink's lease (`outbox:<sink>`), and every write it makes carries the
//! lease's [`LeaseFence`]: once another replica has taken the role, the old holder's writes are
//! refused with [`OutboxStoreError::Fenced`], so a relay that was paused past its lease can
//! neither park, unpark nor take the redrive requests of its successor.

use super::leases::LeaseFence;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// An event a relay stopped trying to deliver, kept until it is redriven.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ParkedEvent {
    pub sink: String,
    pub event_id: Uuid,
    pub position: u64,
    /// The CloudEvent subject: the aggregate id. Later events of a parked subject are parked
    /// behind it, so a subject's events never arrive out of order.
    pub subject: String,
    pub event_type: String,
    /// Delivery attempts made (0 for an event parked behind another without being tried).
    pub attempts: u32,
    pub last_error: String,
    /// The earlier parked event of the same subject this one waits behind, if any.
    pub held_behind: Option<Uuid>,
    pub parked_at: DateTime<Utc>,
    /// Set while a redrive is asked for and the relay has not taken it up yet.
    pub redrive_requested_at: Option<DateTime<Utc>>,
}

/// How far one sink's relay got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SinkProgress {
    pub sink: String,
    /// Every event at or before this position was delivered or parked.
    pub checkpoint: u64,
    /// The relay had read the log up to here when it last saved its mark.
    pub read_position: u64,
    /// Events read but neither delivered nor parked when it last saved its mark.
    pub outstanding: u64,
    pub parked: u64,
}

/// What a relay saves of its progress, now and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayMark {
    /// Every event at or before this position was delivered or parked; only moves forward.
    pub checkpoint: u64,
    /// How far the relay has read the log; only moves forward.
    pub read_position: u64,
    /// Events read but neither delivered nor parked.
    pub outstanding: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutboxStoreError {
    #[error("outbox store unavailable: {0}")]
    Unavailable(String),
    #[error("outbox record cannot be read: {0}")]
    Corrupt(String),
    /// The write was made under a lease another replica has taken since (its token is now
    /// `current`); nothing was written.
    #[error("the lease of {role} moved to token {current}; a write under token {token} was refused")]
    Fenced { role: String, token: u64, current: u64 },
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// The sink's checkpoint (0 when it never delivered anything).
    async fn checkpoint(&self, sink: &str) -> Result<u64, OutboxStoreError>;

    /// Saves the sink's mark (its checkpoint only ever moves forward) and forgets the
    /// delivered subjects the checkpoint has passed.
    async fn save_checkpoint(&self, sink: &str, mark: RelayMark, fence: &LeaseFence) -> Result<(), OutboxStoreError>;

    /// Records that every event of `subject` up to `position` reached the sink, so a relay
    /// restarting from an older checkpoint does not send them again.
    async fn record_delivered(
        &self,
        sink: &str,
        subject: &str,
        position: u64,
        fence: &LeaseFence,
    ) -> Result<(), OutboxStoreError>;

    /// The subjects delivered beyond the sink's checkpoint, each with the position it reached.
    async fn delivered_beyond_checkpoint(&self, sink: &str) -> Result<Vec<(String, u64)>, OutboxStoreError>;

    /// Parks events, or updates them if they are parked already (a failed redrive).
    async fn park(&self, events: Vec<ParkedEvent>, fence: &LeaseFence) -> Result<(), OutboxStoreError>;

    /// Forgets a parked event once it has been delivered.
    async fn unpark(&self, sink: &str, event_id: Uuid, fence: &LeaseFence) -> Result<(), OutboxStoreError>;

    /// Parked events by position, of one sink or of all, at most `limit`.
    async fn parked(&self, sink: Option<&str>, limit: usize) -> Result<Vec<ParkedEvent>, OutboxStoreError>;

    /// The subjects with parked events in `sink`, each with its oldest parked event: a relay
    /// holds their later events back, parked behind that event.
    async fn parked_subjects(&self, sink: &str) -> Result<Vec<(String, Uuid)>, OutboxStoreError>;

    /// Asks the relays to redrive one parked event (in every sink that parked it) or, with
    /// `None`, every parked event. Returns how many parked records were marked.
    async fn request_redrive(&self, event_id: Option<Uuid>) -> Result<u64, OutboxStoreError>;

    /// Takes the redrive requests of `sink`: every parked event of each subject with a request,
    /// by position (a subject is redriven whole, in order), with the requests cleared.
    async fn take_redrive_requests(&self, sink: &str, fence: &LeaseFence)
        -> Result<Vec<ParkedEvent>, OutboxStoreError>;

    /// Every sink that has a checkpoint or parked events.
    async fn progress(&self) -> Result<Vec<SinkProgress>, OutboxStoreError>;
}
