//! The CloudEvents inbox: integrators' events recorded durably (one `inbox_message` stream per
//! `(source, id)`, so a duplicate records nothing and gets the first outcome), then handled by
//! the inbox processor.
//!
//! The processor follows the log with its own checkpoint. For each received message it runs the
//! command the event asks for, with the message's event as causation, then concludes the message
//! as handled, rejected (the instance cannot make that move) or ignored (a type Lablet does not
//! handle). A processor that crashed between the two finds the causation in the instance's stream
//! when it replays, and concludes without running the command twice.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::envelope::EventEnvelope;
use crate::error::{AppError, FieldError};
use crate::mediator::{Handler, Mediator, Request, RequestKind};
use crate::ports::read_models::CommitFence;
use crate::ports::{EventStore, ReadModelStore};
use crate::repository::AggregateRepository;
use crate::subscription::Subscription;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_domain::inbox_message::{inbox_message_id, InboxMessage, InboxMessageCommand, InboxStatus, ReceivedMessage};
use lablet_domain::lablet_instance::{
    CheckedScore, GradingScore, InstanceState, LabletInstance, LabletInstanceCommand,
};
use lablet_domain::values::FreeText;
use lablet_domain::{Aggregate, DomainError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The checkpoint name of the inbox processor.
pub const INBOX_PROCESSOR: &str = "inbox_processor";
/// Event types handled, matched on their ending (`io.lablet.assessment.collection.completed`…).
pub const COLLECTION_COMPLETED: &str = "assessment.collection.completed";
pub const GRADING_COMPLETED: &str = "assessment.grading.completed";

/// A CloudEvent to record.
#[derive(Debug, Clone)]
pub struct ReceiveCloudEvent {
    pub source: String,
    pub id: String,
    pub event_type: String,
    pub subject: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub data: serde_json::Value,
}

impl Request for ReceiveCloudEvent {
    type Output = InboxReceipt;
    const NAME: &'static str = "inbox.receive";
    const KIND: RequestKind = RequestKind::Command;

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value) in [("id", &self.id), ("source", &self.source), ("type", &self.event_type)] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(
                    field,
                    "is a required CloudEvents attribute and must not be empty",
                ));
            }
        }
        errors.is_empty().then_some(()).ok_or(errors)
    }
}

/// What the inbox knows of a message.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct InboxReceipt {
    pub inbox_id: Uuid,
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: InboxStatus,
    pub detail: Option<String>,
    pub duplicate: bool,
    pub received_at: DateTime<Utc>,
    pub concluded_at: Option<DateTime<Utc>>,
    pub position: u64,
}

/// The inbox's record of the CloudEvent `(source, id)`.
pub struct GetInboxMessage {
    pub source: String,
    pub id: String,
}

impl Request for GetInboxMessage {
    type Output = InboxReceipt;
    const NAME: &'static str = "inbox.get";
    const KIND: RequestKind = RequestKind::Query;
}

pub struct InboxHandlers {
    repository: Arc<AggregateRepository>,
}

impl InboxHandlers {
    pub fn new(repository: Arc<AggregateRepository>) -> Self {
        InboxHandlers { repository }
    }

    async fn receipt(&self, source: &str, id: &str, duplicate: bool) -> Result<InboxReceipt, AppError> {
        let inbox_id = inbox_message_id(source, id);
        let loaded = self.repository.load::<InboxMessage>(inbox_id).await?;
        let (Some(message), Some(status)) = (loaded.state.message, loaded.state.status) else {
            return Err(AppError::NotFound(format!("inbox message {id} from {source}")));
        };
        Ok(InboxReceipt {
            inbox_id,
            source: message.source,
            id: message.message_id,
            event_type: message.event_type,
            status,
            detail: loaded.state.detail,
            duplicate,
            received_at: message.received_at,
            concluded_at: loaded.state.concluded_at,
            position: loaded.last_position,
        })
    }
}

#[async_trait]
impl Handler<ReceiveCloudEvent> for InboxHandlers {
    async fn handle(&self, request: &ReceiveCloudEvent, context: &RequestContext) -> Result<InboxReceipt, AppError> {
        let command = InboxMessageCommand::Receive(ReceivedMessage {
            source: request.source.clone(),
            message_id: request.id.clone(),
            event_type: request.event_type.clone(),
            subject: request.subject.clone(),
            time: request.time,
            data: request.data.clone(),
            received_at: self.repository.clock().now(),
        });
        let inbox_id = inbox_message_id(&request.source, &request.id);
        let outcome = self
            .repository
            .execute::<InboxMessage>(inbox_id, &command, context)
            .await?;
        self.receipt(&request.source, &request.id, !outcome.changed).await
    }
}

#[async_trait]
impl Handler<GetInboxMessage> for InboxHandlers {
    async fn handle(&self, request: &GetInboxMessage, _: &RequestContext) -> Result<InboxReceipt, AppError> {
        self.receipt(&request.source, &request.id, false).await
    }
}

#[derive(Deserialize)]
struct CollectionCompleted {
    instance_id: Uuid,
    collection_id: String,
    #[serde(default)]
    artifacts_uri: Option<String>,
}

#[derive(Deserialize)]
struct ScoreData {
    total: f64,
    max: f64,
    #[serde(default)]
    breakdown: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct GradingCompleted {
    instance_id: Uuid,
    score: ScoreData,
    passed: bool,
}

/// How handling one message ended, short of a failure worth retrying.
enum Conclusion {
    Handled(String),
    Rejected(String),
    Ignored(String),
}

/// Sorts an application error: refusals conclude the message, the rest is retried.
fn refusal(err: AppError) -> Result<Conclusion, AppError> {
    match err {
        AppError::Rule(_) | AppError::NotFound(_) | AppError::Validation(_) => Ok(Conclusion::Rejected(match err {
            AppError::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        })),
        retry => Err(retry),
    }
}

pub struct InboxProcessor {
    events: Arc<dyn EventStore>,
    checkpoints: Arc<dyn ReadModelStore>,
    mediator: Arc<Mediator>,
    repository: Arc<AggregateRepository>,
}

impl InboxProcessor {
    pub fn new(
        events: Arc<dyn EventStore>,
        checkpoints: Arc<dyn ReadModelStore>,
        mediator: Arc<Mediator>,
        repository: Arc<AggregateRepository>,
    ) -> Self {
        InboxProcessor {
            events,
            checkpoints,
            mediator,
            repository,
        }
    }

    /// Handles received messages until `shutdown` turns true; restarts from its checkpoint on
    /// errors.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let outcome = tokio::select! {
                outcome = self.follow() => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            if let Err(err) = outcome {
                tracing::error!(error = %err, "inbox processor stopped; restarting from its checkpoint");
                if !crate::shutdown::pause_unless_stopped(&mut shutdown, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    }

    async fn follow(&self) -> Result<(), AppError> {
        let generation = self.checkpoints.generation(INBOX_PROCESSOR).await?;
        let checkpoint = self.checkpoints.checkpoint(INBOX_PROCESSOR).await?.unwrap_or(0);
        let mut subscription = Subscription::new(self.events.clone(), checkpoint, 500);
        let mut committed = checkpoint;
        loop {
            let batch = subscription.next_batch().await?;
            for envelope in batch.iter().filter(|e| e.event_type == "inbox_message.received") {
                self.handle(envelope).await?;
            }
            let fence = CommitFence::new(generation, committed);
            self.checkpoints
                .commit(INBOX_PROCESSOR, fence, subscription.position(), Vec::new())
                .await?;
            committed = subscription.position();
        }
    }

    async fn handle(&self, received: &EventEnvelope) -> Result<(), AppError> {
        let inbox_id = Uuid::parse_str(received.aggregate_id()).map_err(|e| AppError::Internal(e.to_string()))?;
        let loaded = self.repository.load::<InboxMessage>(inbox_id).await?;
        let (Some(message), Some(InboxStatus::Received)) = (loaded.state.message, loaded.state.status) else {
            return Ok(()); // concluded before
        };
        let context = RequestContext {
            correlation_id: received
                .correlation_id
                .clone()
                .unwrap_or_else(|| message.message_id.clone()),
            causation_id: Some(received.event_id.to_string()),
            actor: format!("integrator:{}", message.source),
            traceparent: received.traceparent.clone(),
            owner_scope: None,
            fence: None,
        };
        let conclusion = self.dispatch(&message, received.event_id, &context).await?;
        let (status, detail) = match conclusion {
            Conclusion::Handled(detail) => (InboxStatus::Handled, detail),
            Conclusion::Rejected(reason) => (InboxStatus::Rejected, reason),
            Conclusion::Ignored(reason) => (InboxStatus::Ignored, reason),
        };
        let conclude = InboxMessageCommand::Conclude { status, detail };
        match self
            .repository
            .execute::<InboxMessage>(inbox_id, &conclude, &context)
            .await
        {
            Ok(_) | Err(AppError::Rule(DomainError::RuleViolated(_))) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The event types this message's command already caused on `instance_id`, if any: a
    /// replay after a crash must not run them again.
    async fn already_caused(&self, instance_id: Uuid, cause: Uuid) -> Result<Vec<String>, AppError> {
        let stream = LabletInstance::stream_name(instance_id);
        let cause = cause.to_string();
        let events = self.events.read_stream(&stream, 1, 10_000).await?;
        Ok(events
            .into_iter()
            .filter(|e| e.causation_id.as_deref() == Some(cause.as_str()))
            .map(|e| e.event_type)
            .collect())
    }

    async fn dispatch(
        &self,
        message: &ReceivedMessage,
        cause: Uuid,
        context: &RequestContext,
    ) -> Result<Conclusion, AppError> {
        let data = message.data.clone();
        if message.event_type.ends_with(COLLECTION_COMPLETED) {
            let event: CollectionCompleted = match serde_json::from_value(data) {
                Ok(event) => event,
                Err(e) => return Ok(Conclusion::Rejected(format!("data: {e}"))),
            };
            if !self.already_caused(event.instance_id, cause).await?.is_empty() {
                return Ok(Conclusion::Handled("instance moved to grading".into()));
            }
            let reason = match &event.artifacts_uri {
                Some(uri) => format!("collection {} completed: {uri}", event.collection_id),
                None => format!("collection {} completed", event.collection_id),
            };
            let reason = match FreeText::parse(reason) {
                Ok(reason) => reason,
                Err(why) => return Ok(Conclusion::Rejected(format!("artifacts_uri: {why}"))),
            };
            let command = LabletInstanceCommand::Transition {
                to: InstanceState::Grading,
                reason: Some(reason),
                worker_id: None,
            };
            return match self
                .mediator
                .send(Execute::<LabletInstance>::on(event.instance_id, command), context)
                .await
            {
                Ok(_) => Ok(Conclusion::Handled("instance moved to grading".into())),
                Err(err) => refusal(err),
            };
        }
        if message.event_type.ends_with(GRADING_COMPLETED) {
            let event: GradingCompleted = match serde_json::from_value(data) {
                Ok(event) => event,
                Err(e) => return Ok(Conclusion::Rejected(format!("data: {e}"))),
            };
            let done = self.already_caused(event.instance_id, cause).await?;
            if done.is_empty() {
                // A grading result belongs to an instance being graded, whatever else its state
                // machine would allow.
                let current = self
                    .repository
                    .load::<LabletInstance>(event.instance_id)
                    .await?
                    .state
                    .state;
                match current {
                    None => {
                        return Ok(Conclusion::Rejected(format!(
                            "lablet_instance {} does not exist",
                            event.instance_id
                        )))
                    }
                    Some(InstanceState::Grading) => {}
                    Some(other) => {
                        return Ok(Conclusion::Rejected(format!("lablet_instance is {other}, not grading")));
                    }
                }
            }
            if !done.iter().any(|t| t == "lablet_instance.score_recorded") {
                let score = CheckedScore::parse(GradingScore {
                    total: event.score.total,
                    max: event.score.max,
                    passed: event.passed,
                    breakdown: event.score.breakdown,
                });
                let score = match score {
                    Ok(score) => score,
                    Err(problems) => {
                        let problems: Vec<String> = problems.iter().map(|(f, why)| format!("{f}: {why}")).collect();
                        return Ok(Conclusion::Rejected(problems.join("; ")));
                    }
                };
                let command = LabletInstanceCommand::RecordScore { score };
                if let Err(err) = self
                    .mediator
                    .send(Execute::<LabletInstance>::on(event.instance_id, command), context)
                    .await
                {
                    return refusal(err);
                }
            }
            if !done.iter().any(|t| t == "lablet_instance.stopping") {
                let command = LabletInstanceCommand::Transition {
                    to: InstanceState::Stopping,
                    reason: FreeText::parse("grading completed").ok(),
                    worker_id: None,
                };
                if let Err(err) = self
                    .mediator
                    .send(Execute::<LabletInstance>::on(event.instance_id, command), context)
                    .await
                {
                    return refusal(err);
                }
            }
            return Ok(Conclusion::Handled("score recorded; instance stopping".into()));
        }
        Ok(Conclusion::Ignored(format!(
            "events of type {} are not handled",
            message.event_type
        )))
    }
}
