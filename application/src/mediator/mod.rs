//! The mediator: one entry point that sends a command or query through the pipeline
//! behaviours to its single registered handler.
//!
//! Behaviours wrap the handler like layers (tracing span → validation → retry on conflict) and
//! see every request in a type-erased form; the handler sees its own request type. Handlers are
//! registered once at start-up; sending a request without a handler is a start-up bug reported
//! as an error, never a panic.

mod behaviours;
mod pipeline;

pub use behaviours::{RetryOnConflict, TracingBehaviour, ValidationBehaviour};
pub use pipeline::{AnyOutput, Next, PipelineBehaviour, RequestInfo};

use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use async_trait::async_trait;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a request changes state (and may be retried on conflict) or only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Command,
    Query,
}

/// A command or query.
pub trait Request: Send + Sync + 'static {
    type Output: Send + 'static;
    /// A stable name for spans, logs and metrics.
    const NAME: &'static str;
    const KIND: RequestKind;

    /// The name of this very request: [`Self::NAME`] unless one type carries several requests
    /// (a domain command enum, say).
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Checks the input alone; errors name the offending fields.
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
}

#[async_trait]
pub trait Handler<R: Request>: Send + Sync + 'static {
    async fn handle(&self, request: &R, context: &RequestContext) -> Result<R::Output, AppError>;
}

#[derive(Default)]
pub struct Mediator {
    handlers: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    behaviours: Vec<Arc<dyn PipelineBehaviour>>,
}

impl Mediator {
    /// A mediator with the standard pipeline: tracing, validation, retry of commands on
    /// version conflicts (up to `max_attempts` runs).
    pub fn with_standard_pipeline(max_attempts: u32) -> Self {
        let mut mediator = Mediator::default();
        mediator.add_standard_behaviours(max_attempts);
        mediator
    }

    /// Adds the standard behaviours inside the ones added before (a metrics behaviour, say).
    pub fn add_standard_behaviours(&mut self, max_attempts: u32) {
        self.add_behaviour(Arc::new(TracingBehaviour));
        self.add_behaviour(Arc::new(ValidationBehaviour));
        self.add_behaviour(Arc::new(RetryOnConflict::new(max_attempts)));
    }

    /// Adds a behaviour inside the ones added before it.
    pub fn add_behaviour(&mut self, behaviour: Arc<dyn PipelineBehaviour>) {
        self.behaviours.push(behaviour);
    }

    /// Registers the handler of `R`, replacing any earlier one.
    pub fn register<R: Request>(&mut self, handler: Arc<dyn Handler<R>>) {
        self.handlers.insert(TypeId::of::<R>(), Box::new(handler));
    }

    /// Sends `request` through the pipeline to its handler.
    pub async fn send<R: Request>(&self, request: R, context: &RequestContext) -> Result<R::Output, AppError> {
        let handler = self
            .handlers
            .get(&TypeId::of::<R>())
            .and_then(|h| h.downcast_ref::<Arc<dyn Handler<R>>>())
            .ok_or_else(|| AppError::Internal(format!("no handler registered for {}", request.name())))?;
        let validate = || request.validate();
        let info = RequestInfo {
            name: request.name(),
            kind: R::KIND,
            context,
            validate: &validate,
        };
        let terminal = || -> pipeline::BoxFuture<'_, Result<AnyOutput, AppError>> {
            Box::pin(async {
                let output = handler.handle(&request, context).await?;
                Ok(Box::new(output) as AnyOutput)
            })
        };
        let output = Next::new(&self.behaviours, &info, &terminal).run().await?;
        output
            .downcast::<R::Output>()
            .map(|boxed| *boxed)
            .map_err(|_| AppError::Internal(format!("a behaviour changed the output type of {}", R::NAME)))
    }
}

#[cfg(test)]
mod tests;
