//! The one write request: a domain command addressed to one aggregate.
//!
//! There is no application copy of a domain command. The API (or a job) builds the command from
//! checked values, wraps it in [`Execute`], and sends it through the mediator; the
//! [`AggregateRepository`] loads the aggregate, lets it decide in a
//! [`DecisionContext`](lablet_domain::DecisionContext) made from the clock, the caller and the
//! id source, and appends what it decided. Application logic that is more than that (sealing
//! credentials, checking who owns an instance) is a handler of `Execute<ThatAggregate>` that
//! calls the repository in turn.

use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::{Handler, Request, RequestKind};
use crate::repository::{AggregateRepository, CommandOutcome};
use async_trait::async_trait;
use lablet_domain::{Aggregate, Command};
use uuid::Uuid;

/// `command` for the aggregate `id`, or for a new aggregate with an id of the id source.
#[derive(Debug, Clone)]
pub struct Execute<A: Aggregate> {
    id: Option<Uuid>,
    pub command: A::Command,
}

impl<A: Aggregate> Execute<A> {
    /// `command` for the aggregate `id` (existing, or new with an id derived from its data).
    pub fn on(id: Uuid, command: A::Command) -> Self {
        Execute { id: Some(id), command }
    }

    /// `command` creating a new aggregate under a fresh id.
    pub fn create(command: A::Command) -> Self {
        Execute { id: None, command }
    }

    /// The aggregate addressed, making a fresh id for a new one.
    pub fn target(&self, repository: &AggregateRepository) -> Uuid {
        self.id.unwrap_or_else(|| repository.ids().new_id())
    }
}

impl<A: Aggregate> Request for Execute<A> {
    type Output = CommandOutcome;
    const NAME: &'static str = A::KIND.name();
    const KIND: RequestKind = RequestKind::Command;

    fn name(&self) -> &'static str {
        self.command.name()
    }
}

#[async_trait]
impl<A: Aggregate> Handler<Execute<A>> for AggregateRepository {
    async fn handle(&self, request: &Execute<A>, context: &RequestContext) -> Result<CommandOutcome, AppError> {
        self.execute::<A>(request.target(self), &request.command, context).await
    }
}
