//! What auditors ask of the event log: read a stream or the whole log, see an aggregate as it
//! was at a position, verify every stream's hash chain, and compute a digest of all stream
//! heads to keep outside the system.
//!
//! Everything here reads the log through the event store port, page by page: memory grows with
//! the number of streams (one head each), never with the number of events.

use crate::context::RequestContext;
use crate::envelope::EventEnvelope;
use crate::error::{validate_limit, AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::{EventStore, EventStoreError};
use async_trait::async_trait;
use lablet_domain::inbox_message::InboxMessage;
use lablet_domain::lab_record::LabRecord;
use lablet_domain::lablet_definition::LabletDefinition;
use lablet_domain::lablet_instance::LabletInstance;
use lablet_domain::work_order::WorkOrder;
use lablet_domain::worker::Worker;
use lablet_domain::worker_template::WorkerTemplate;
use lablet_domain::{Aggregate, AggregateKind};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Events read per round trip.
const PAGE: usize = 1000;
/// The most events a filtered log query scans before it answers with a cursor.
const MAX_SCAN: usize = 100_000;
/// Page sizes of audit queries.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// A link of a hash chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub stream: String,
    pub version: u64,
    pub position: u64,
    pub reason: String,
}

/// The most breaks a verification lists (it counts them all).
pub const MAX_LISTED_BREAKS: usize = 100;

/// What a verification walked and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub streams: u64,
    /// Every link that does not hold, in log order (the first [`MAX_LISTED_BREAKS`]).
    pub breaks: Vec<ChainBreak>,
    /// How many links do not hold in all.
    pub broken: u64,
}

impl VerifyReport {
    /// The first link that does not hold, if any.
    pub fn first_break(&self) -> Option<&ChainBreak> {
        self.breaks.first()
    }
}

/// What a log read gives an auditor: an event, or the place of one that cannot be read.
enum Read {
    Event(EventEnvelope),
    Unreadable {
        stream: String,
        version: u64,
        position: u64,
        hash: String,
        reason: String,
    },
}

impl Read {
    fn position(&self) -> u64 {
        match self {
            Read::Event(envelope) => envelope.position,
            Read::Unreadable { position, .. } => *position,
        }
    }
}

/// Up to `limit` events after `after`. When one of them cannot be read, the page ends with it:
/// the events before it are read one by one, so none is lost and the next page starts after
/// it.
async fn read_page(store: &dyn EventStore, after: u64, limit: usize) -> Result<Vec<Read>, EventStoreError> {
    match store.read_all(after, limit).await {
        Ok(page) => Ok(page.into_iter().map(Read::Event).collect()),
        Err(EventStoreError::UnreadableEvent { .. }) => {
            let mut items = Vec::new();
            let mut at = after;
            while items.len() < limit {
                match store.read_all(at, 1).await {
                    Ok(mut one) => match one.pop() {
                        Some(envelope) => {
                            at = envelope.position;
                            items.push(Read::Event(envelope));
                        }
                        None => break,
                    },
                    Err(EventStoreError::UnreadableEvent {
                        stream,
                        version,
                        position,
                        hash,
                        reason,
                    }) => {
                        items.push(Read::Unreadable {
                            stream,
                            version,
                            position,
                            hash,
                            reason,
                        });
                        break;
                    }
                    Err(other) => return Err(other),
                }
            }
            Ok(items)
        }
        Err(other) => Err(other),
    }
}

/// Walks the whole log and checks every stream's chain: versions 1, 2, 3… without gap or
/// repeat, and each hash equal to the hash recomputed from the previous one and the event.
/// It goes on past a break (checking later links against what is stored), and an event whose
/// content cannot be read is a break at its place. `progress` is told the position reached
/// after each page.
pub async fn verify_log(
    store: &dyn EventStore,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, EventStoreError> {
    let mut heads: HashMap<String, (u64, String)> = HashMap::new();
    let mut report = VerifyReport {
        events: 0,
        streams: 0,
        breaks: Vec::new(),
        broken: 0,
    };
    let mut after = 0;
    loop {
        let page = read_page(store, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position();
        for item in page {
            report.events += 1;
            let (stream, version, position, hash, unreadable) = match item {
                Read::Event(envelope) => {
                    let previous = heads.get(&envelope.stream).map(|(_, hash)| hash.as_str());
                    let altered = envelope.hash != envelope.expected_hash(previous);
                    let reason = altered.then(|| {
                        "hash does not match the event and the previous link: altered, inserted or reordered"
                            .to_string()
                    });
                    (
                        envelope.stream,
                        envelope.version,
                        envelope.position,
                        envelope.hash,
                        reason,
                    )
                }
                Read::Unreadable {
                    stream,
                    version,
                    position,
                    hash,
                    reason,
                } => (
                    stream,
                    version,
                    position,
                    hash,
                    Some(format!("its content cannot be read: {reason}")),
                ),
            };
            let expected_version = heads.get(&stream).map_or(1, |(version, _)| version + 1);
            let reason = if version != expected_version {
                Some(format!("version {version} follows version {}", expected_version - 1))
            } else {
                unreadable
            };
            if let Some(reason) = reason {
                report.broken += 1;
                if report.breaks.len() < MAX_LISTED_BREAKS {
                    report.breaks.push(ChainBreak {
                        stream: stream.clone(),
                        version,
                        position,
                        reason,
                    });
                }
            }
            heads.insert(stream, (version, hash));
        }
        progress(after);
    }
    report.streams = heads.len() as u64;
    Ok(report)
}

/// One SHA-256 over every stream head (`stream`, version, hash, sorted by stream) as of a
/// position: equal digests mean equal logs up to there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogDigest {
    pub position: u64,
    pub streams: u64,
    pub sha256: String,
}

/// The digest of the log as of `at` (default: the head). An event whose content cannot be
/// read still counts by its stored version and hash.
pub async fn digest_at(store: &dyn EventStore, at: Option<u64>) -> Result<LogDigest, EventStoreError> {
    let limit = match at {
        Some(position) => position,
        None => store.head_position().await?,
    };
    let mut heads: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut after = 0;
    'pages: loop {
        let page = read_page(store, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position();
        for item in page {
            if item.position() > limit {
                break 'pages;
            }
            match item {
                Read::Event(envelope) => heads.insert(envelope.stream, (envelope.version, envelope.hash)),
                Read::Unreadable {
                    stream, version, hash, ..
                } => heads.insert(stream, (version, hash)),
            };
        }
    }
    let mut hasher = Sha256::new();
    for (stream, (version, hash)) in &heads {
        hasher.update(format!("{stream}\n{version}\n{hash}\n").as_bytes());
    }
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(LogDigest {
        position: limit,
        streams: heads.len() as u64,
        sha256,
    })
}

/// A stream's events, paged by version.
pub struct ReadStreamPage {
    pub stream: String,
    pub from_version: u64,
    pub limit: usize,
}

/// A page of a stream, and where the next one starts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StreamPage {
    pub items: Vec<EventEnvelope>,
    pub next_from_version: Option<u64>,
}

impl Request for ReadStreamPage {
    type Output = StreamPage;
    const NAME: &'static str = "audit.read_stream";
    const KIND: RequestKind = RequestKind::Query;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        validate_page(self.limit)
    }
}

/// The whole log after a position, optionally only events of one type.
pub struct ReadLogPage {
    pub from_position: u64,
    pub limit: usize,
    pub event_type: Option<String>,
}

/// A page of the log, and where the next one starts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LogPage {
    pub items: Vec<EventEnvelope>,
    pub next_from_position: Option<u64>,
}

impl Request for ReadLogPage {
    type Output = LogPage;
    const NAME: &'static str = "audit.read_log";
    const KIND: RequestKind = RequestKind::Query;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        validate_page(self.limit)
    }
}

/// An aggregate's state as of a global position.
pub struct StreamStateAt {
    pub stream: String,
    pub at_position: Option<u64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StreamState {
    pub stream: String,
    pub at_position: u64,
    pub version: u64,
    pub state: serde_json::Value,
}

impl Request for StreamStateAt {
    type Output = StreamState;
    const NAME: &'static str = "audit.stream_state";
    const KIND: RequestKind = RequestKind::Query;
}

fn validate_page(limit: usize) -> Result<(), Vec<FieldError>> {
    validate_limit(limit, MAX_AUDIT_PAGE)
}

pub struct AuditQueries {
    store: Arc<dyn EventStore>,
}

impl AuditQueries {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        AuditQueries { store }
    }
}

#[async_trait]
impl Handler<ReadStreamPage> for AuditQueries {
    async fn handle(&self, request: &ReadStreamPage, _: &RequestContext) -> Result<StreamPage, AppError> {
        let from = request.from_version.max(1);
        let mut items = self.store.read_stream(&request.stream, from, request.limit + 1).await?;
        if items.is_empty() && from == 1 {
            return Err(AppError::NotFound(format!("stream {}", request.stream)));
        }
        let next_from_version = (items.len() > request.limit).then(|| {
            items.truncate(request.limit);
            items.last().map_or(from, |e| e.version + 1)
        });
        Ok(StreamPage {
            items,
            next_from_version,
        })
    }
}

#[async_trait]
impl Handler<ReadLogPage> for AuditQueries {
    async fn handle(&self, request: &ReadLogPage, _: &RequestContext) -> Result<LogPage, AppError> {
        let mut items = Vec::new();
        let mut after = request.from_position;
        let mut scanned = 0;
        loop {
            let page = self.store.read_all(after, PAGE).await?;
            if page.is_empty() {
                return Ok(LogPage {
                    items,
                    next_from_position: None,
                });
            }
            let end_of_log = page.len() < PAGE;
            for envelope in page {
                scanned += 1;
                after = envelope.position;
                if request.event_type.as_deref().is_none_or(|t| t == envelope.event_type) {
                    items.push(envelope);
                    if items.len() == request.limit {
                        return Ok(LogPage {
                            items,
                            next_from_position: Some(after),
                        });
                    }
                }
            }
            if end_of_log {
                return Ok(LogPage {
                    items,
                    next_from_position: None,
                });
            }
            if scanned >= MAX_SCAN {
                return Ok(LogPage {
                    items,
                    next_from_position: Some(after),
                });
            }
        }
    }
}

/// Folds the events of `stream` up to `at` into an aggregate of type `A`.
async fn fold<A: Aggregate + Serialize>(
    store: &dyn EventStore,
    stream: &str,
    at: u64,
) -> Result<(u64, serde_json::Value), AppError> {
    let mut state = A::default();
    let mut version = 0;
    'pages: loop {
        let page = store.read_stream(stream, version + 1, PAGE).await?;
        let done = page.len() < PAGE;
        for envelope in page {
            if envelope.position > at {
                break 'pages;
            }
            let event: A::Event = envelope
                .decode()
                .map_err(|e| AppError::Internal(format!("cannot decode {stream} v{}: {e}", envelope.version)))?;
            state.apply(&event);
            version = envelope.version;
        }
        if done {
            break;
        }
    }
    let state = serde_json::to_value(&state).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((version, state))
}

#[async_trait]
impl Handler<StreamStateAt> for AuditQueries {
    async fn handle(&self, request: &StreamStateAt, _: &RequestContext) -> Result<StreamState, AppError> {
        let at = match request.at_position {
            Some(position) => position,
            None => self.store.head_position().await?,
        };
        let store = self.store.as_ref();
        let stream = request.stream.as_str();
        let Some(kind) = AggregateKind::of_stream(stream) else {
            return Err(AppError::NotFound(format!("stream {stream}")));
        };
        let (version, state) = match kind {
            AggregateKind::LabRecord => fold::<LabRecord>(store, stream, at).await?,
            AggregateKind::LabletInstance => fold::<LabletInstance>(store, stream, at).await?,
            AggregateKind::WorkOrder => fold::<WorkOrder>(store, stream, at).await?,
            AggregateKind::Worker => fold::<Worker>(store, stream, at).await?,
            AggregateKind::InboxMessage => fold::<InboxMessage>(store, stream, at).await?,
            AggregateKind::LabletDefinition => fold::<LabletDefinition>(store, stream, at).await?,
            AggregateKind::WorkerTemplate => fold::<WorkerTemplate>(store, stream, at).await?,
        };
        if version == 0 {
            return Err(AppError::NotFound(format!("stream {stream} at position {at}")));
        }
        Ok(StreamState {
            stream: request.stream.clone(),
            at_position: at,
            version,
            state,
        })
    }
}
