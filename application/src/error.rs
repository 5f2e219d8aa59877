//! The errors handlers answer, one enum mapped once to problem+json at the API edge.

use crate::ports::{ApiKeyStoreError, EventStoreError, OutboxStoreError, ReadModelError};
use lablet_domain::DomainError;
use serde::Serialize;

/// One invalid input field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// Input that can never succeed (HTTP 422).
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// The addressed entity does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may not act on this entity (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// A domain rule refused the command (HTTP 409).
    #[error(transparent)]
    Rule(DomainError),
    /// A singleton job acted under a lease another replica has taken since; nothing was
    /// written (HTTP 409).
    #[error("the lease of {role} moved to token {current}; a command under token {token} was refused")]
    Fenced { role: String, token: u64, current: u64 },
    /// The stream moved under us more often than the retry budget allows (HTTP 409).
    #[error("concurrent update: {0}")]
    Conflict(String),
    /// A read model has not reached the requested position in time (HTTP 503).
    #[error("projection {projection} has applied position {applied}, not yet {wanted}")]
    ProjectionLagging {
        projection: &'static str,
        applied: u64,
        wanted: u64,
    },
    /// A store is down or broken (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// The caller asked again too soon (HTTP 429 with `Retry-After`).
    #[error("{detail}")]
    TooSoon { detail: String, retry_after_secs: u64 },
    /// A CML server the request needed failed (HTTP 502).
    #[error("{0}")]
    Upstream(String),
    /// A bug, not an outage: no handler registered, an event that cannot be encoded or
    /// decoded, a stored document or event that cannot be read (HTTP 500, never retried).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound { aggregate } => AppError::NotFound(aggregate.to_string()),
            DomainError::InvalidValue { field, message } => AppError::Validation(vec![FieldError::new(field, message)]),
            other => AppError::Rule(other),
        }
    }
}

impl From<EventStoreError> for AppError {
    fn from(err: EventStoreError) -> Self {
        match err {
            EventStoreError::WrongExpectedVersion { .. } | EventStoreError::EventIdReused { .. } => {
                AppError::Conflict(err.to_string())
            }
            EventStoreError::Unavailable(_) => AppError::Unavailable(err.to_string()),
            EventStoreError::InvalidAppend(_)
            | EventStoreError::Corrupt(_)
            | EventStoreError::UnreadableEvent { .. } => AppError::Internal(err.to_string()),
        }
    }
}

impl From<ReadModelError> for AppError {
    fn from(err: ReadModelError) -> Self {
        match err {
            ReadModelError::Unavailable(_) | ReadModelError::Superseded { .. } | ReadModelError::Fenced { .. } => {
                AppError::Unavailable(err.to_string())
            }
            ReadModelError::Corrupt(_) | ReadModelError::UnknownCollection(_) => AppError::Internal(err.to_string()),
        }
    }
}

impl From<OutboxStoreError> for AppError {
    fn from(err: OutboxStoreError) -> Self {
        AppError::Unavailable(err.to_string())
    }
}

/// A page size must be between 1 and `max`; the error names the `limit` field.
pub fn validate_limit(limit: usize, max: usize) -> Result<(), Vec<FieldError>> {
    if limit == 0 || limit > max {
        return Err(vec![FieldError::new("limit", format!("must be between 1 and {max}"))]);
    }
    Ok(())
}

impl AppError {
    /// Whether retrying the whole command may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, AppError::Conflict(_))
    }
}

impl From<ApiKeyStoreError> for AppError {
    fn from(err: ApiKeyStoreError) -> Self {
        AppError::Unavailable(err.to_string())
    }
}
