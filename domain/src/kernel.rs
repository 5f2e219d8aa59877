//! The event-sourcing kernel every aggregate implements.
//!
//! An aggregate is a state plus an enum of events. `decide` looks at the state and a command
//! and answers the events that should happen (or a [`DomainError`]); it never mutates. `apply`
//! is the only way state changes, for live commands and for replay alike.
//!
//! Event type names are stable strings written once, by hand, in each aggregate's
//! [`domain_events!`](crate::domain_events) declaration (`lab_record.state_changed`), never
//! derived from Rust paths, so renaming a Rust type cannot change stored data.

use crate::kind::AggregateKind;
use crate::upcast::{upcast, Upcaster};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A fact that happened to one aggregate. Serialised as its payload alone; the type name and
/// schema version travel beside it in the event envelope.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Every wire name of this event enum, in declaration order.
    const EVENT_TYPES: &'static [&'static str];
    /// The transforms that bring stored payloads of older schema versions to the current one.
    const UPCASTERS: &'static [Upcaster] = &[];
    /// The stable wire name, `<aggregate>.<what_happened>`.
    fn event_type(&self) -> &'static str;
    /// The schema version of this event's payload.
    fn schema_version(&self) -> u32;
}

/// What may be asked of one aggregate. Its fields are already valid values (see
/// [`crate::values`]): a command that exists is well-formed, and `decide` judges only whether
/// the state allows it.
pub trait Command: Debug + Clone + Send + Sync + 'static {
    /// A stable name for spans, logs and metrics: `<aggregate>.<verb>`.
    fn name(&self) -> &'static str;
}

/// What a decision may read beyond the state and the command: the moment, who asks, and a
/// random draw. The application fills it from its clock and id ports for every command (as
/// cqrs-es hands services to its aggregates), so commands carry only what the caller chose
/// and `decide` stays a pure function of (state, command, context).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionContext {
    pub now: DateTime<Utc>,
    /// Who asks: `user:<subject>`, `apikey:<id>` or `system`.
    pub actor: String,
    /// Uniform in `[0, 1)`, to spread retry times.
    pub jitter: f64,
}

/// A consistency boundary: a state folded from its own stream of events.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// The kind of aggregate; its streams are `<kind name>-<uuid>`.
    const KIND: AggregateKind;
    type Event: DomainEvent;
    type Command: Command;

    /// Pure decision: the events this command causes in this state, or why it may not happen.
    fn decide(&self, command: &Self::Command, context: &DecisionContext) -> Result<Vec<Self::Event>, DomainError>;

    /// The only mutation: fold one event into the state.
    fn apply(&mut self, event: &Self::Event);

    /// The stream that holds the aggregate with this id.
    fn stream_name(id: uuid::Uuid) -> String {
        Self::KIND.stream(id)
    }
}

/// Why a command was refused by the domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// The aggregate the command addresses has never been created.
    #[error("{aggregate} does not exist")]
    NotFound { aggregate: &'static str },
    /// The aggregate exists already and the command would create it.
    #[error("{aggregate} already exists")]
    AlreadyExists { aggregate: &'static str },
    /// The state machine does not allow this move.
    #[error("{aggregate} cannot go from {from} to {to}")]
    InvalidTransition {
        aggregate: &'static str,
        from: String,
        to: String,
    },
    /// A rule of the domain forbids the command in the current state.
    #[error("{0}")]
    RuleViolated(String),
    /// The caller's lease (its fencing token) is no longer the current one: another holder
    /// took over, or the work moved on. The caller must stop.
    #[error("{0}")]
    StaleLease(String),
    /// A value in the command is unacceptable whatever the state.
    #[error("{field}: {message}")]
    InvalidValue { field: &'static str, message: String },
}

/// One changed field of an entity, as recorded in events and operation histories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// The set of changes an event records, keyed by field name.
pub type ChangedFields = BTreeMap<String, FieldChange>;

/// Records `field` in `changes` when `old != new`.
pub fn record_change<T: Serialize + PartialEq>(changes: &mut ChangedFields, field: &str, old: &T, new: &T) {
    if old != new {
        changes.insert(
            field.to_owned(),
            FieldChange {
                old: serde_json::to_value(old).unwrap_or(serde_json::Value::Null),
                new: serde_json::to_value(new).unwrap_or(serde_json::Value::Null),
            },
        );
    }
}

/// Serialises an event's payload (without its type tag) to JSON text.
///
/// Events are enums tagged `{"type": …, "data": …}`; serde writes that form with the tag
/// first, so the payload is the exact text between the two. Anything else falls back to
/// taking the `data` member out of a parsed value.
pub fn encode_event<E: DomainEvent>(event: &E) -> Result<String, serde_json::Error> {
    let tagged = serde_json::to_string(event)?;
    let prefix_len = "{\"type\":\"".len() + event.event_type().len() + "\",\"data\":".len();
    let expected_prefix = format!("{{\"type\":\"{}\",\"data\":", event.event_type());
    if tagged.len() > prefix_len && tagged.starts_with(&expected_prefix) && tagged.ends_with('}') {
        return Ok(tagged[prefix_len..tagged.len() - 1].to_owned());
    }
    let mut value = serde_json::to_value(event)?;
    let data = value
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null);
    serde_json::to_string(&data)
}

/// Rebuilds an event from its stored type name, schema version and payload. A payload of an
/// older schema version goes through the event's upcasters first; one of the current version is
/// decoded from its text directly.
pub fn decode_event<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<E, serde_json::Error> {
    let tag = serde_json::to_string(event_type)?;
    match upcast(E::UPCASTERS, event_type, schema_version, payload)? {
        None => serde_json::from_str(&format!("{{\"type\":{tag},\"data\":{payload}}}")),
        Some(upcasted) => serde_json::from_value(serde_json::json!({ "type": event_type, "data": upcasted })),
    }
}
