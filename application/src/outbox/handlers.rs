//! What operators ask of the outbox: how far each sink lags, what is parked, and redrive.

use crate::context::RequestContext;
use crate::error::{validate_limit, AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::{EventStore, OutboxStore, ParkedEvent, LAG_COUNT_LIMIT};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The most parked events one overview lists.
pub const MAX_PARKED_PAGE: usize = 500;

/// The outbox at a glance.
pub struct GetOutbox {
    /// Parked events to list, oldest first.
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SinkOverview {
    pub sink: String,
    /// Whether this process runs a relay for the sink.
    pub active: bool,
    pub checkpoint: u64,
    /// Events not yet delivered nor parked, counted up to 10,000: those the relay held when it
    /// last saved its mark, and every event after what it had read.
    pub lag: u64,
    pub parked: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OutboxOverview {
    pub head_position: u64,
    pub sinks: Vec<SinkOverview>,
    pub parked: Vec<ParkedEvent>,
}

impl Request for GetOutbox {
    type Output = OutboxOverview;
    const NAME: &'static str = "outbox.get";
    const KIND: RequestKind = RequestKind::Query;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        validate_limit(self.limit, MAX_PARKED_PAGE)
    }
}

/// Asks the relays to deliver parked events again: one (with the parked events of its subject
/// before it, so the subject stays in order) or, with no id, all of them.
pub struct RedriveParked {
    pub event_id: Option<Uuid>,
}

impl Request for RedriveParked {
    /// Parked records marked for redrive.
    type Output = u64;
    const NAME: &'static str = "outbox.redrive";
    const KIND: RequestKind = RequestKind::Command;
}

pub struct OutboxHandlers {
    events: Arc<dyn EventStore>,
    outbox: Arc<dyn OutboxStore>,
    /// The sinks this process relays to, and the signal that wakes each relay.
    active: Vec<(String, Arc<Notify>)>,
}

impl OutboxHandlers {
    pub fn new(events: Arc<dyn EventStore>, outbox: Arc<dyn OutboxStore>, active: Vec<(String, Arc<Notify>)>) -> Self {
        OutboxHandlers { events, outbox, active }
    }
}

#[async_trait]
impl Handler<GetOutbox> for OutboxHandlers {
    async fn handle(&self, request: &GetOutbox, _: &RequestContext) -> Result<OutboxOverview, AppError> {
        let head_position = self.events.head_position().await?;
        let mut sinks = Vec::new();
        for progress in self.outbox.progress().await? {
            sinks.push(SinkOverview {
                active: self.active.iter().any(|(name, _)| *name == progress.sink),
                // What is really outstanding: what the relay held undelivered when it last saved
                // its mark, and everything after what it had read.
                lag: (progress.outstanding + self.events.count_after(progress.read_position, LAG_COUNT_LIMIT).await?)
                    .min(LAG_COUNT_LIMIT),
                sink: progress.sink,
                checkpoint: progress.checkpoint,
                parked: progress.parked,
            });
        }
        for (name, _) in &self.active {
            if !sinks.iter().any(|sink: &SinkOverview| sink.sink == *name) {
                sinks.push(SinkOverview {
                    sink: name.clone(),
                    active: true,
                    checkpoint: 0,
                    lag: self.events.count_after(0, LAG_COUNT_LIMIT).await?,
                    parked: 0,
                });
            }
        }
        sinks.sort_by(|a, b| a.sink.cmp(&b.sink));
        let parked = self.outbox.parked(None, request.limit).await?;
        Ok(OutboxOverview {
            head_position,
            sinks,
            parked,
        })
    }
}

#[async_trait]
impl Handler<RedriveParked> for OutboxHandlers {
    async fn handle(&self, request: &RedriveParked, _: &RequestContext) -> Result<u64, AppError> {
        let marked = self.outbox.request_redrive(request.event_id).await?;
        if let (Some(event_id), 0) = (request.event_id, marked) {
            return Err(AppError::NotFound(format!("parked event {event_id}")));
        }
        for (_, wake) in &self.active {
            wake.notify_one();
        }
        Ok(marked)
    }
}
