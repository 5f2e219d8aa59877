//! The read-model store port: documents kept by projections and served to queries.
//!
//! A document is a JSON object plus its operation history (the 50 most recent operations,
//! oldest first). Projections write a batch of documents and their checkpoint together: an
//! adapter that shares a database with its checkpoints commits both in one transaction, one that
//! cannot guards every document with the last position applied to it.
//!
//! Every commit is fenced: it names the checkpoint its batch starts from and the generation
//! its runner read, and lands only if the stored projection is still there. Two runners of one
//! projection (two replicas, or a paused one waking up) can therefore never both write: the
//! one that lost the race is refused with [`ReadModelError::Fenced`], writes nothing, and
//! starts again from the committed checkpoint.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// How many operations each document keeps.
pub const OPERATION_HISTORY_LIMIT: usize = 50;

/// A read-model collection and the fields queries may filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionSpec {
    pub name: &'static str,
    /// Fields a list query may filter on by equality; adapters index them.
    pub filter_fields: &'static [&'static str],
}

/// One operation on an entity, as kept in its `operation_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub position: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub previous_state: Option<Value>,
    pub new_state: Option<Value>,
    pub changed_fields: BTreeMap<String, lablet_domain::FieldChange>,
}

/// A history entry as the JSON text it is stored as; serialised once, when it is projected,
/// because entries wait in memory (compactly) until their batch commits.
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub position: u64,
    pub json: Box<RawValue>,
}

impl HistoryRecord {
    pub fn new(entry: &HistoryEntry) -> Result<Self, serde_json::Error> {
        Ok(HistoryRecord {
            position: entry.position,
            json: serde_json::value::to_raw_value(entry)?,
        })
    }
}

/// A document as a projector sees it: its body and the last position applied to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    pub body: Map<String, Value>,
    pub last_position: u64,
}

/// A document write of a projection batch: the new body and the operations to append to its
/// history.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    pub collection: &'static str,
    pub id: String,
    pub body: Map<String, Value>,
    pub last_position: u64,
    /// New operations, oldest first.
    pub new_history: Vec<HistoryRecord>,
}

/// A filter on one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The field equals this text.
    Equals { field: &'static str, value: String },
    /// The field is absent or null.
    IsNull { field: &'static str },
}

/// A page request on a collection, ordered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    pub limit: usize,
    /// Only ids greater than this one (the cursor of the previous page).
    pub after_id: Option<String>,
    pub include_history: bool,
}

/// One page of documents, as the JSON text they are stored as (queries pass it through
/// without parsing it).
#[derive(Debug, Clone, Serialize)]
pub struct ListPage {
    pub items: Vec<Box<RawValue>>,
    pub next_cursor: Option<String>,
}

/// A projection's durable state: its checkpoint and, if it is stuck, why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    pub position: u64,
    pub error: Option<ProjectionFault>,
}

/// The error that stops a projection at an event it cannot apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionFault {
    pub message: String,
    /// The position of the event, when the error is about one.
    pub position: Option<u64>,
    pub at: DateTime<Utc>,
}

/// What a commit requires of the stored projection: the generation its runner read and the
/// checkpoint its batch starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitFence {
    pub generation: u64,
    pub from: u64,
}

impl CommitFence {
    pub fn new(generation: u64, from: u64) -> Self {
        CommitFence { generation, from }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadModelError {
    #[error("read-model store unavailable: {0}")]
    Unavailable(String),
    #[error("stored document cannot be read: {0}")]
    Corrupt(String),
    #[error("unknown collection {0}")]
    UnknownCollection(String),
    /// A rebuild swapped a new read model in since the committing runner read its checkpoint;
    /// nothing was written, and the runner must start again from the new checkpoint.
    #[error("projection {projection} was replaced by a rebuild (now generation {current})")]
    Superseded { projection: String, current: u64 },
    /// Another runner committed the projection since this one's batch began: the stored
    /// checkpoint is `found`, not the `expected` start of the batch. Nothing was written.
    #[error("projection {projection} is at {found}, not {expected}: another runner committed it; nothing was written")]
    Fenced {
        projection: String,
        expected: u64,
        found: u64,
    },
}

#[async_trait]
pub trait ReadModelStore: Send + Sync + 'static {
    /// The documents with these ids (missing ones are absent from the map), without history.
    async fn load_documents(
        &self,
        collection: &'static str,
        ids: &[String],
    ) -> Result<HashMap<String, StoredDocument>, ReadModelError>;

    /// Writes a projection batch and the projection's checkpoint, all or nothing, if the
    /// projection is still at the fence's generation (else `Superseded`) and checkpoint (else
    /// `Fenced`); a refused commit writes nothing. A projection that never committed is at 0.
    async fn commit(
        &self,
        projection: &str,
        fence: CommitFence,
        checkpoint: u64,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), ReadModelError>;

    /// The last position a projection committed, or None if it never ran.
    async fn checkpoint(&self, projection: &str) -> Result<Option<u64>, ReadModelError>;

    /// The projection's generation: 0 at first, one more each time a rebuild swaps a new read
    /// model in. A runner reads it with its checkpoint and commits with it, so that a runner
    /// that started before a swap can never write over the swapped-in documents.
    async fn generation(&self, projection: &str) -> Result<u64, ReadModelError>;

    /// Records why a projection cannot go on; the next commit clears it.
    async fn record_error(&self, projection: &str, position: Option<u64>, message: &str) -> Result<(), ReadModelError>;

    /// A projection's checkpoint and error, or None if it never ran nor failed.
    async fn status(&self, projection: &str) -> Result<Option<ProjectionStatus>, ReadModelError>;

    /// One document with its `operation_history`, as JSON text.
    async fn get(&self, collection: &'static str, id: &str) -> Result<Option<Box<RawValue>>, ReadModelError>;

    /// A page of documents matching every filter, by ascending id.
    async fn list(&self, collection: &'static str, query: &ListQuery) -> Result<ListPage, ReadModelError>;
}
