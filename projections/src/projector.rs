//! The projector trait and helpers for projectors written against typed views.

use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_domain::{decode_event, DomainEvent};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    #[error("event {position} ({event_type}) cannot be decoded: {message}")]
    Undecodable {
        position: u64,
        event_type: String,
        message: String,
    },
    #[error("event {position} ({event_type}) needs a document that does not exist")]
    MissingDocument { position: u64, event_type: String },
    #[error("document cannot be read: {0}")]
    BadDocument(String),
}

/// Turns events of one aggregate kind into documents of one collection.
pub trait Projector: Send + Sync + 'static {
    /// The collection written; its name is also the projection's name.
    fn collection(&self) -> CollectionSpec;

    /// Whether this projector cares about events of this type.
    fn handles(&self, event_type: &str) -> bool;

    /// The document after `event`, given the document before it (None: none yet).
    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        event: &EventEnvelope,
    ) -> Result<Map<String, Value>, ProjectionError>;
}

/// Decodes the domain event inside `envelope`.
pub fn decode<E: DomainEvent>(envelope: &EventEnvelope) -> Result<E, ProjectionError> {
    decode_event(&envelope.event_type, envelope.payload.get()).map_err(|e| ProjectionError::Undecodable {
        position: envelope.position,
        event_type: envelope.event_type.clone(),
        message: e.to_string(),
    })
}

/// The typed view in `current`, if any.
pub fn view<V: DeserializeOwned>(current: Option<&Map<String, Value>>) -> Result<Option<V>, ProjectionError> {
    current
        .map(|map| {
            serde_json::from_value(Value::Object(map.clone())).map_err(|e| ProjectionError::BadDocument(e.to_string()))
        })
        .transpose()
}

/// The typed view in `current`, which `envelope` needs to exist.
pub fn existing_view<V: DeserializeOwned>(
    current: Option<&Map<String, Value>>,
    envelope: &EventEnvelope,
) -> Result<V, ProjectionError> {
    view(current)?.ok_or_else(|| ProjectionError::MissingDocument {
        position: envelope.position,
        event_type: envelope.event_type.clone(),
    })
}

/// `view` as a document body.
pub fn document<V: Serialize>(view: &V) -> Result<Map<String, Value>, ProjectionError> {
    match serde_json::to_value(view) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ProjectionError::BadDocument(format!(
            "a view must be an object, not {other}"
        ))),
        Err(e) => Err(ProjectionError::BadDocument(e.to_string())),
    }
}
