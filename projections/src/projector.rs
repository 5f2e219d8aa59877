//! The projector trait: what an event changes in its document, as a patch of fields.
//!
//! A projector never sees the bookkeeping: the runner applies the patch, records in the
//! operation history the old and new value of every field the patch changed, and stamps
//! `version` and `updated_at`. Creation events patch in a whole typed view, so every document
//! of a collection has the same shape.

use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_domain::{AggregateKind, DomainEvent};
use serde::Serialize;
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
    #[error("document cannot be written: {0}")]
    BadDocument(String),
}

/// Field assignments, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch(pub Vec<(String, Value)>);

impl Patch {
    /// Sets `field` to `value`.
    pub fn set(&mut self, field: &str, value: impl Serialize) -> Result<&mut Self, ProjectionError> {
        let value = serde_json::to_value(value).map_err(|e| ProjectionError::BadDocument(e.to_string()))?;
        self.0.push((field.to_owned(), value));
        Ok(self)
    }

    /// Sets every field of `view` (a struct serialising to an object).
    pub fn set_all(&mut self, view: &impl Serialize) -> Result<&mut Self, ProjectionError> {
        match serde_json::to_value(view) {
            Ok(Value::Object(fields)) => {
                self.0.extend(fields);
                Ok(self)
            }
            Ok(other) => Err(ProjectionError::BadDocument(format!(
                "a view must be an object, not {other}"
            ))),
            Err(e) => Err(ProjectionError::BadDocument(e.to_string())),
        }
    }
}

/// Turns events of one aggregate kind into documents of one collection.
pub trait Projector: Send + Sync + 'static {
    /// The collection written; its name is also the projection's name.
    fn collection(&self) -> CollectionSpec;

    /// The kind of aggregate whose events this projector turns into documents.
    fn kind(&self) -> AggregateKind;

    /// What `event` changes in the document (None: there is no document yet).
    fn project(&self, current: Option<&Map<String, Value>>, event: &EventEnvelope) -> Result<Patch, ProjectionError>;
}

/// Decodes the domain event inside `envelope`.
pub fn decode<E: DomainEvent>(envelope: &EventEnvelope) -> Result<E, ProjectionError> {
    envelope.decode().map_err(|e| ProjectionError::Undecodable {
        position: envelope.position,
        event_type: envelope.event_type.clone(),
        message: e.to_string(),
    })
}

/// The current document, which `envelope` needs to exist.
pub fn existing<'a>(
    current: Option<&'a Map<String, Value>>,
    envelope: &EventEnvelope,
) -> Result<&'a Map<String, Value>, ProjectionError> {
    current.ok_or_else(|| ProjectionError::MissingDocument {
        position: envelope.position,
        event_type: envelope.event_type.clone(),
    })
}
