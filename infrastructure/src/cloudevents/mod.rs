//! CloudEvents for the outbox: a domain event as a CloudEvent 1.0, and the sinks that deliver
//! them (HTTP in binary or structured mode, NATS JetStream).
//!
//! Built with the `cloudevents-sdk` crate: `id` = event id, `type` =
//! `io.lablet.<aggregate>.<event>.v<schema>`, `source` = configured, `subject` = aggregate id,
//! `time` = occurred at, `sequence` = global position, `traceparent` when the command had one,
//! and the payload as JSON data.

mod http;
mod nats;

pub use http::{HttpMode, HttpSink};
pub use nats::NatsSink;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use lablet_application::envelope::EventEnvelope;
use lablet_application::outbox::DeliveryError;

/// The CloudEvent `type` of a stored event type and schema version.
/// The `sequence` extension of the event at `position`: a string that sorts as text in the
/// order of positions (zero-padded to the 20 digits of the largest position), as the
/// extension asks, so that `"10"` never sorts before `"9"`.
pub fn sequence(position: u64) -> String {
    format!("{position:020}")
}

pub fn cloud_event_type(event_type: &str, schema_version: u32) -> String {
    format!("io.lablet.{event_type}.v{schema_version}")
}

/// `event` as a CloudEvent from `source`.
pub fn to_cloud_event(event: &EventEnvelope, source: &str) -> Result<Event, DeliveryError> {
    let data: serde_json::Value = serde_json::from_str(event.payload.get())
        .map_err(|err| DeliveryError::permanent(format!("stored payload is not JSON: {err}")))?;
    let mut builder = EventBuilderV10::new()
        .id(event.event_id.to_string())
        .ty(cloud_event_type(&event.event_type, event.schema_version))
        .source(source)
        .subject(event.aggregate_id())
        .time(event.occurred_at)
        .extension("sequence", sequence(event.position))
        .data("application/json", data);
    if let Some(traceparent) = &event.traceparent {
        builder = builder.extension("traceparent", traceparent.as_str());
    }
    builder
        .build()
        .map_err(|err| DeliveryError::permanent(format!("cannot build the CloudEvent: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use cloudevents::AttributesReader;
    use lablet_application::ports::{IdSource, UuidV7Ids};
    use serde_json::value::RawValue;

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            event_id: UuidV7Ids.new_id(),
            stream: "lab_record-6f1e1c1a-0000-4000-8000-000000000001".into(),
            version: 3,
            position: 42,
            event_type: "lab_record.state_changed".into(),
            schema_version: 1,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            recorded_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 1).unwrap(),
            correlation_id: None,
            causation_id: None,
            actor: "system".into(),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            payload: RawValue::from_string(r#"{"state":"STARTED"}"#.into()).unwrap(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_domain_event_becomes_a_cloud_event_with_every_attribute() {
        let stored = envelope();
        let event = to_cloud_event(&stored, "/lablet").unwrap();
        assert_eq!(event.id(), stored.event_id.to_string());
        assert_eq!(event.ty(), "io.lablet.lab_record.state_changed.v1");
        assert_eq!(event.source().to_string(), "/lablet");
        assert_eq!(event.subject(), Some("6f1e1c1a-0000-4000-8000-000000000001"));
        assert_eq!(event.time(), Some(&stored.occurred_at));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(
            event.extension("sequence").map(|v| v.to_string()),
            Some("00000000000000000042".into())
        );
        let mut sequences: Vec<String> = [9, 10, 100, u64::MAX].into_iter().map(sequence).collect();
        let by_position = sequences.clone();
        sequences.sort();
        assert_eq!(sequences, by_position, "text order is position order");
        assert_eq!(
            event.extension("traceparent").map(|v| v.to_string()),
            stored.traceparent.clone()
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["data"], serde_json::json!({"state": "STARTED"}));
    }
}
