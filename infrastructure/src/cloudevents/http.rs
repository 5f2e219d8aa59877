//! The HTTP sink: one POST per event, binary mode (attributes as `ce-` headers, the data as the
//! body) by default, structured mode (`application/cloudevents+json`) by option.

use super::to_cloud_event;
use async_trait::async_trait;
use cloudevents::binding::reqwest::{RequestBuilderExt, RequestSerializer};
use cloudevents::message::StructuredDeserializer;
use lablet_application::envelope::EventEnvelope;
use lablet_application::outbox::{CloudEventSink, DeliveryError};
use reqwest::StatusCode;
use std::time::Duration;

/// How long one delivery may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The CloudEvents HTTP content mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMode {
    Binary,
    Structured,
}

pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    mode: HttpMode,
    source: String,
}

impl HttpSink {
    pub fn new(url: reqwest::Url, mode: HttpMode, source: String) -> Self {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpSink {
            client,
            url,
            mode,
            source,
        }
    }
}

/// Whether a refusal is about the event itself, so that sending it again cannot help.
fn refuses_the_event(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    )
}

#[async_trait]
impl CloudEventSink for HttpSink {
    fn name(&self) -> &str {
        "http"
    }

    async fn deliver(&self, event: &EventEnvelope) -> Result<(), DeliveryError> {
        let cloud_event = to_cloud_event(event, &self.source)?;
        let request = self.client.post(self.url.clone());
        let request = match self.mode {
            HttpMode::Binary => request.event(cloud_event),
            HttpMode::Structured => {
                StructuredDeserializer::deserialize_structured(cloud_event, RequestSerializer::new(request))
            }
        }
        .map_err(|err| DeliveryError::permanent(format!("cannot encode the CloudEvent: {err}")))?;
        let response = request
            .send()
            .await
            .map_err(|err| DeliveryError::retryable(format!("POST {}: {err}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("POST {} answered {status}", self.url);
        if refuses_the_event(status) {
            Err(DeliveryError::permanent(message))
        } else {
            Err(DeliveryError::retryable(message))
        }
    }
}
