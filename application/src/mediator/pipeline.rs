//! The type-erased chain behaviours run in.

use super::RequestKind;
use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use async_trait::async_trait;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A handler's output on its way back through the behaviours.
pub type AnyOutput = Box<dyn Any + Send>;
type Terminal<'a> = dyn Fn() -> BoxFuture<'a, Result<AnyOutput, AppError>> + Send + Sync + 'a;

/// What behaviours may know about a request without knowing its type.
pub struct RequestInfo<'a> {
    pub name: &'static str,
    pub kind: RequestKind,
    pub context: &'a RequestContext,
    pub validate: &'a (dyn Fn() -> Result<(), Vec<FieldError>> + Send + Sync),
}

/// The rest of the pipeline. It can be run more than once (that is how retry works).
#[derive(Clone, Copy)]
pub struct Next<'a> {
    behaviours: &'a [Arc<dyn PipelineBehaviour>],
    info: &'a RequestInfo<'a>,
    terminal: &'a Terminal<'a>,
}

impl<'a> Next<'a> {
    pub(super) fn new(
        behaviours: &'a [Arc<dyn PipelineBehaviour>],
        info: &'a RequestInfo<'a>,
        terminal: &'a Terminal<'a>,
    ) -> Self {
        Next {
            behaviours,
            info,
            terminal,
        }
    }

    pub fn info(&self) -> &'a RequestInfo<'a> {
        self.info
    }

    /// Runs the remaining behaviours and then the handler.
    pub async fn run(self) -> Result<AnyOutput, AppError> {
        match self.behaviours.split_first() {
            Some((behaviour, rest)) => {
                behaviour
                    .handle(Next {
                        behaviours: rest,
                        ..self
                    })
                    .await
            }
            None => (self.terminal)().await,
        }
    }
}

/// A layer around every request.
#[async_trait]
pub trait PipelineBehaviour: Send + Sync + 'static {
    async fn handle(&self, next: Next<'_>) -> Result<AnyOutput, AppError>;
}
