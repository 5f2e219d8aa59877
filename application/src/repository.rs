//! Loads aggregates from their streams and appends the events their commands decide.
//!
//! A bounded in-memory cache keeps recently used aggregates with their version, so a command on
//! a hot aggregate does not re-read its stream. The cache is only an optimisation: every append
//! still carries the expected version it was decided against, and a conflict evicts the entry so
//! the retried command reads the stream afresh. Several processes may therefore share one store.

use crate::context::RequestContext;
use crate::envelope::{truncate_to_micros, EventMetadata, NewEvent};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::ports::{Clock, EventStore, EventStoreError, ExpectedVersion, IdSource, LeaseStore, UuidV7Ids};
use crate::trace_context::{traceparent_of, TRACE_TARGET};
use lablet_domain::{encode_event, Aggregate, DecisionContext, DomainEvent};
use serde::Serialize;
use serde_json::value::RawValue;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::Instrument;
use uuid::Uuid;

/// Events read per round trip when folding a stream.
const STREAM_PAGE: usize = 1000;
/// Cache shards; a command locks one shard for a map lookup only.
const CACHE_SHARDS: usize = 32;
/// Entries per shard before the shard is emptied (a crude but allocation-free bound).
const CACHE_SHARD_CAPACITY: usize = 8192;

/// An aggregate as of a version of its stream.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The stream's version (0: the stream does not exist).
    pub version: u64,
    /// The global position of the stream's last event (0: none).
    pub last_position: u64,
}

/// What a command did: the aggregate's id, version and last position afterwards, and whether
/// it appended anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CommandOutcome {
    pub id: Uuid,
    pub version: u64,
    pub position: u64,
    pub changed: bool,
}

pub struct AggregateRepository {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    metrics: Arc<Metrics>,
    /// Where the fence of a command made under a lease is checked.
    leases: Option<Arc<dyn LeaseStore>>,
    shards: Vec<Mutex<HashMap<String, Box<dyn Any + Send>>>>,
}

impl AggregateRepository {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        AggregateRepository {
            store,
            clock,
            ids: Arc::new(UuidV7Ids),
            metrics: Arc::default(),
            leases: None,
            shards: (0..CACHE_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Counts the events it appends in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Checks the fence of every command made under a lease (`RequestContext::fence`) in
    /// `leases` right before its events are appended.
    pub fn with_leases(mut self, leases: Arc<dyn LeaseStore>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Refuses a command made under a lease another replica has taken since. The check runs
    /// right before the append, not in its transaction (the log and the leases may live in
    /// different stores): a holder paused between the two can still append once, and that
    /// append is still checked against the stream's expected version.
    async fn check_fence(&self, context: &RequestContext) -> Result<(), AppError> {
        let (Some(fence), Some(leases)) = (&context.fence, &self.leases) else {
            return Ok(());
        };
        let current = leases
            .token(&fence.role)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        match current {
            Some(current) if current > fence.token => Err(AppError::Fenced {
                role: fence.role.clone(),
                token: fence.token,
                current,
            }),
            _ => Ok(()),
        }
    }

    /// Makes its ids (of events and new aggregates) with `ids`.
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn ids(&self) -> &dyn IdSource {
        self.ids.as_ref()
    }

    fn shard(&self, stream: &str) -> &Mutex<HashMap<String, Box<dyn Any + Send>>> {
        // FNV-1a: cheap, stable, good enough to spread uuids.
        let hash = stream.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        &self.shards[(hash as usize) % CACHE_SHARDS]
    }

    fn cached<A: Aggregate>(&self, stream: &str) -> Option<Loaded<A>> {
        let shard = self.shard(stream).lock().ok()?;
        shard.get(stream)?.downcast_ref::<Loaded<A>>().cloned()
    }

    fn remember<A: Aggregate>(&self, stream: &str, loaded: Loaded<A>) {
        if let Ok(mut shard) = self.shard(stream).lock() {
            if shard.len() >= CACHE_SHARD_CAPACITY && !shard.contains_key(stream) {
                shard.clear();
            }
            shard.insert(stream.to_owned(), Box::new(loaded));
        }
    }

    fn forget(&self, stream: &str) {
        if let Ok(mut shard) = self.shard(stream).lock() {
            shard.remove(stream);
        }
    }

    /// The aggregate `id` folded from its whole stream (or from the cache).
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> Result<Loaded<A>, AppError> {
        let stream = A::stream_name(id);
        if let Some(loaded) = self.cached::<A>(&stream) {
            return Ok(loaded);
        }
        self.fold_stream(&stream)
            .instrument(tracing::info_span!(target: TRACE_TARGET, "event_store.read_stream", stream = %stream))
            .await
    }

    async fn fold_stream<A: Aggregate>(&self, stream: &str) -> Result<Loaded<A>, AppError> {
        let mut loaded = Loaded {
            state: A::default(),
            version: 0,
            last_position: 0,
        };
        loop {
            let page = self.store.read_stream(stream, loaded.version + 1, STREAM_PAGE).await?;
            for envelope in &page {
                let event: A::Event = envelope
                    .decode()
                    .map_err(|e| AppError::Internal(format!("cannot decode {} v{}: {e}", stream, envelope.version)))?;
                loaded.state.apply(&event);
                loaded.version = envelope.version;
                loaded.last_position = envelope.position;
            }
            if page.len() < STREAM_PAGE {
                break;
            }
        }
        Ok(loaded)
    }

    /// Loads aggregate `id`, lets it decide on `command`, and appends what it decided.
    /// A version conflict comes back as [`AppError::Conflict`] for the retry behaviour.
    pub async fn execute<A: Aggregate>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let loaded = self.load::<A>(id).await?;
        let events = loaded.state.decide(command, &self.decision_context(context))?;
        self.save(id, loaded, events, context).await
    }

    /// What a decision for `context`'s caller may read now: the clock's time, the actor, and a
    /// fresh jitter.
    pub fn decision_context(&self, context: &RequestContext) -> DecisionContext {
        DecisionContext {
            now: self.clock.now(),
            actor: context.actor.clone(),
            jitter: self.ids.random_unit(),
        }
    }

    /// Appends `events` decided on `loaded`, expecting the stream still at `loaded.version`.
    pub async fn save<A: Aggregate>(
        &self,
        id: Uuid,
        mut loaded: Loaded<A>,
        events: Vec<A::Event>,
        context: &RequestContext,
    ) -> Result<CommandOutcome, AppError> {
        let stream = A::stream_name(id);
        if events.is_empty() {
            let outcome = CommandOutcome {
                id,
                version: loaded.version,
                position: loaded.last_position,
                changed: false,
            };
            self.remember(&stream, loaded);
            return Ok(outcome);
        }
        let occurred_at = truncate_to_micros(self.clock.now());
        let span =
            tracing::info_span!(target: TRACE_TARGET, "event_store.append", stream = %stream, events = events.len());
        let metadata = EventMetadata {
            correlation_id: Some(context.correlation_id.clone()),
            causation_id: context.causation_id.clone(),
            actor: context.actor.clone(),
            // The append span when traces are exported, so that later work on these events
            // continues this trace; else the caller's trace context as it came.
            traceparent: traceparent_of(&span).or_else(|| context.traceparent.clone()),
        };
        let mut new_events = Vec::with_capacity(events.len());
        for event in &events {
            let payload = encode_event(event)
                .and_then(RawValue::from_string)
                .map_err(|e| AppError::Internal(format!("cannot encode {}: {e}", event.event_type())))?;
            new_events.push(NewEvent {
                event_id: self.ids.new_id(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                occurred_at,
                payload,
                metadata: metadata.clone(),
            });
        }
        let expected = ExpectedVersion::for_loaded(loaded.version);
        self.check_fence(context).await?;
        match self.store.append(&stream, expected, new_events).instrument(span).await {
            Ok(appended) => {
                self.metrics.count_appended(events.iter().map(DomainEvent::event_type));
                events.iter().for_each(|e| loaded.state.apply(e));
                loaded.version = appended.version;
                loaded.last_position = appended.last_position;
                self.remember(&stream, loaded);
                Ok(CommandOutcome {
                    id,
                    version: appended.version,
                    position: appended.last_position,
                    changed: true,
                })
            }
            Err(err) => {
                if matches!(err, EventStoreError::WrongExpectedVersion { .. }) {
                    self.forget(&stream);
                }
                Err(err.into())
            }
        }
    }
}
