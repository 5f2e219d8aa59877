//! The standard behaviours: a tracing span with the correlation id, input validation, and
//! bounded retry of a whole command when its stream moved underneath it.

use super::pipeline::{AnyOutput, Next, PipelineBehaviour};
use super::RequestKind;
use crate::error::AppError;
use async_trait::async_trait;
use std::time::Duration;
use tracing::Instrument;

/// Opens a span per request carrying its name and correlation id; logs failures.
pub struct TracingBehaviour;

#[async_trait]
impl PipelineBehaviour for TracingBehaviour {
    async fn handle(&self, next: Next<'_>) -> Result<AnyOutput, AppError> {
        let info = next.info();
        let span = tracing::info_span!(
            "request",
            otel.name = info.name,
            request = info.name,
            correlation_id = %info.context.correlation_id,
            actor = %info.context.actor,
        );
        let result = next.run().instrument(span.clone()).await;
        if let Err(err) = &result {
            span.in_scope(|| match err {
                AppError::Unavailable(_) => tracing::error!(error = %err, "request failed"),
                AppError::Internal(_) => tracing::error!(error = %err, "request failed on a bug"),
                _ => tracing::debug!(error = %err, "request refused"),
            });
        }
        result
    }
}

/// Refuses invalid input before any handler runs.
pub struct ValidationBehaviour;

#[async_trait]
impl PipelineBehaviour for ValidationBehaviour {
    async fn handle(&self, next: Next<'_>) -> Result<AnyOutput, AppError> {
        (next.info().validate)().map_err(AppError::Validation)?;
        next.run().await
    }
}

/// Runs a command again (reloading its aggregate) when its append met a version conflict, up to
/// a bounded number of runs; queries pass through.
pub struct RetryOnConflict {
    max_attempts: u32,
}

impl RetryOnConflict {
    pub fn new(max_attempts: u32) -> Self {
        RetryOnConflict {
            max_attempts: max_attempts.max(1),
        }
    }
}

#[async_trait]
impl PipelineBehaviour for RetryOnConflict {
    async fn handle(&self, next: Next<'_>) -> Result<AnyOutput, AppError> {
        if next.info().kind != RequestKind::Command {
            return next.run().await;
        }
        let mut attempt = 1;
        loop {
            match next.run().await {
                Err(err) if err.is_conflict() && attempt < self.max_attempts => {
                    tracing::debug!(attempt, error = %err, "retrying command after a conflict");
                    // Let the competing writer finish; grows a little with each attempt.
                    tokio::time::sleep(Duration::from_micros(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}
