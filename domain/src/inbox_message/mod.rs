//! InboxMessage: one CloudEvent received from an integrator, stream `inbox_message-<uuid>`.
//!
//! The id is derived from the event's `(source, id)`, so receiving the same event twice
//! addresses the same aggregate and records nothing new: a duplicate gets the first outcome.
//! A received message is concluded once: handled, rejected (the transition it asks for is not
//! allowed) or ignored (a type Lablet does not handle).

use crate::kernel::{Aggregate, Command, DecisionContext, DomainError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of inbox message ids.
const INBOX_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_626c_6574_496e_626f_784d_7367_0001);

/// The inbox message id of the CloudEvent `(source, id)`. The source is length-prefixed so
/// that no two pairs share a name.
pub fn inbox_message_id(source: &str, id: &str) -> Uuid {
    Uuid::new_v5(&INBOX_NAMESPACE, format!("{}:{source}{id}", source.len()).as_bytes())
}

/// The CloudEvent as received; `received_at` is when its request arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub source: String,
    pub message_id: String,
    pub event_type: String,
    pub subject: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub data: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    Received,
    Handled,
    Rejected,
    Ignored,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum InboxMessageEvent {
        "inbox_message.received" => Received(ReceivedMessage),
        "inbox_message.handled" => Handled { outcome: String, at: DateTime<Utc> },
        "inbox_message.rejected" => Rejected { reason: String, at: DateTime<Utc> },
        "inbox_message.ignored" => Ignored { reason: String, at: DateTime<Utc> },
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum InboxMessageCommand {
    /// Record a received CloudEvent; nothing happens if it was received before.
    Receive(ReceivedMessage),
    /// Record how handling the message ended.
    Conclude { status: InboxStatus, detail: String },
}

impl Command for InboxMessageCommand {
    fn name(&self) -> &'static str {
        match self {
            InboxMessageCommand::Receive(_) => "inbox_message.receive",
            InboxMessageCommand::Conclude { .. } => "inbox_message.conclude",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InboxMessage {
    pub message: Option<ReceivedMessage>,
    pub status: Option<InboxStatus>,
    pub detail: Option<String>,
    pub concluded_at: Option<DateTime<Utc>>,
}

impl Aggregate for InboxMessage {
    const KIND: crate::AggregateKind = crate::AggregateKind::InboxMessage;
    type Event = InboxMessageEvent;
    type Command = InboxMessageCommand;

    fn decide(
        &self,
        command: &InboxMessageCommand,
        context: &DecisionContext,
    ) -> Result<Vec<InboxMessageEvent>, DomainError> {
        match command {
            InboxMessageCommand::Receive(_) if self.message.is_some() => Ok(vec![]),
            InboxMessageCommand::Receive(message) => Ok(vec![InboxMessageEvent::Received(message.clone())]),
            InboxMessageCommand::Conclude { status, detail } => {
                match self.status {
                    None => {
                        return Err(DomainError::NotFound {
                            aggregate: Self::KIND.name(),
                        })
                    }
                    Some(InboxStatus::Received) => {}
                    Some(done) => {
                        return Err(DomainError::RuleViolated(
                            format!("the message was already {done:?}").to_lowercase(),
                        ))
                    }
                }
                let (detail, at) = (detail.clone(), context.now);
                Ok(vec![match status {
                    InboxStatus::Handled => InboxMessageEvent::Handled { outcome: detail, at },
                    InboxStatus::Rejected => InboxMessageEvent::Rejected { reason: detail, at },
                    InboxStatus::Ignored => InboxMessageEvent::Ignored { reason: detail, at },
                    InboxStatus::Received => {
                        return Err(DomainError::InvalidValue {
                            field: "status",
                            message: "a message is concluded as handled, rejected or ignored".into(),
                        })
                    }
                }])
            }
        }
    }

    fn apply(&mut self, event: &InboxMessageEvent) {
        match event {
            InboxMessageEvent::Received(message) => {
                self.message = Some(message.clone());
                self.status = Some(InboxStatus::Received);
            }
            InboxMessageEvent::Handled { outcome: detail, at }
            | InboxMessageEvent::Rejected { reason: detail, at }
            | InboxMessageEvent::Ignored { reason: detail, at } => {
                self.status = Some(match event {
                    InboxMessageEvent::Handled { .. } => InboxStatus::Handled,
                    InboxMessageEvent::Rejected { .. } => InboxStatus::Rejected,
                    _ => InboxStatus::Ignored,
                });
                self.detail = Some(detail.clone());
                self.concluded_at = Some(*at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_context;

    fn received() -> ReceivedMessage {
        ReceivedMessage {
            source: "/grading".into(),
            message_id: "1".into(),
            event_type: "io.lablet.assessment.grading.completed".into(),
            subject: None,
            time: None,
            data: serde_json::json!({}),
            received_at: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    fn conclude(status: InboxStatus) -> InboxMessageCommand {
        InboxMessageCommand::Conclude {
            status,
            detail: "d".into(),
        }
    }

    #[test]
    fn ids_are_stable_and_unambiguous() {
        assert_eq!(inbox_message_id("a", "b"), inbox_message_id("a", "b"));
        assert_ne!(inbox_message_id("a", "bc"), inbox_message_id("ab", "c"));
    }

    #[test]
    fn a_message_is_received_once_and_concluded_once() {
        let mut message = InboxMessage::default();
        assert!(matches!(
            message.decide(&conclude(InboxStatus::Handled), &test_context()),
            Err(DomainError::NotFound { .. })
        ));
        let events = message
            .decide(&InboxMessageCommand::Receive(received()), &test_context())
            .unwrap();
        events.iter().for_each(|e| message.apply(e));
        assert_eq!(
            message
                .decide(&InboxMessageCommand::Receive(received()), &test_context())
                .unwrap(),
            vec![],
            "a duplicate records nothing"
        );
        assert!(message
            .decide(&conclude(InboxStatus::Received), &test_context())
            .is_err());
        let events = message
            .decide(&conclude(InboxStatus::Rejected), &test_context())
            .unwrap();
        events.iter().for_each(|e| message.apply(e));
        assert_eq!(message.status, Some(InboxStatus::Rejected));
        assert!(matches!(
            message.decide(&conclude(InboxStatus::Handled), &test_context()),
            Err(DomainError::RuleViolated(_))
        ));
    }
}
