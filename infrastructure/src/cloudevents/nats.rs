//! The NATS JetStream sink: each event published in structured mode (the CloudEvent as JSON) to
//! `<prefix>.<aggregate>.<event>`, acknowledged by the stream before it counts as delivered.
//! The event id is the `Nats-Msg-Id`, so JetStream drops a redelivery inside its duplicate
//! window.
//!
//! The stream (default `LABLET`, capturing `<prefix>.>`) is created on first use if missing.
//! The connection is made in the background and kept up by the client; while NATS is away,
//! deliveries fail and are retried like any other failure.

use super::to_cloud_event;
use async_nats::jetstream::{self, context::Publish};
use async_trait::async_trait;
use lablet_application::envelope::EventEnvelope;
use lablet_application::outbox::{CloudEventSink, DeliveryError};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long one publish may wait for the stream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NatsSink {
    url: String,
    stream: String,
    subject_prefix: String,
    source: String,
    context: OnceCell<jetstream::Context>,
}

impl NatsSink {
    pub fn new(url: String, stream: String, subject_prefix: String, source: String) -> Self {
        NatsSink {
            url,
            stream,
            subject_prefix,
            source,
            context: OnceCell::new(),
        }
    }

    /// The subject an event type is published on: `<prefix>.lab_record.state_changed`.
    pub fn subject_of(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.subject_prefix)
    }

    /// The JetStream context, connecting and creating the stream the first time.
    async fn context(&self) -> Result<&jetstream::Context, DeliveryError> {
        self.context
            .get_or_try_init(|| async {
                crate::tls::install_crypto_provider();
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect(self.url.as_str())
                    .await
                    .map_err(|err| DeliveryError::retryable(format!("connect to {}: {err}", self.url)))?;
                let mut context = jetstream::new(client);
                context.set_timeout(ACK_TIMEOUT);
                context
                    .get_or_create_stream(jetstream::stream::Config {
                        name: self.stream.clone(),
                        subjects: vec![format!("{}.>", self.subject_prefix)],
                        ..Default::default()
                    })
                    .await
                    .map_err(|err| DeliveryError::retryable(format!("stream {}: {err}", self.stream)))?;
                Ok(context)
            })
            .await
    }
}

#[async_trait]
impl CloudEventSink for NatsSink {
    fn name(&self) -> &str {
        "nats"
    }

    async fn deliver(&self, event: &EventEnvelope) -> Result<(), DeliveryError> {
        let cloud_event = to_cloud_event(event, &self.source)?;
        let payload = serde_json::to_vec(&cloud_event)
            .map_err(|err| DeliveryError::permanent(format!("cannot encode the CloudEvent: {err}")))?;
        let context = self.context().await?;
        let subject = self.subject_of(&event.event_type);
        let publish = Publish::build()
            .payload(payload.into())
            .message_id(event.event_id.to_string())
            .header("content-type", "application/cloudevents+json");
        let failed = |err: &dyn std::fmt::Display| DeliveryError::retryable(format!("publish to {subject}: {err}"));
        let ack = context
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| failed(&e))?;
        ack.await.map_err(|e| failed(&e))?;
        Ok(())
    }
}
