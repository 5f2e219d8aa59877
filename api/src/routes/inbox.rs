//! `POST /api/v1/events`: CloudEvents 1.0 from integrators, in binary, structured and batch
//! mode; `GET /api/v1/events/inbox/{source}/{id}`: what became of one.
//!
//! Every event of a request is checked before any is recorded; a 202 is answered only once all
//! are durably recorded. Handling happens afterwards, in the inbox processor.

use super::AppState;
use crate::extract::{Context, RawBody};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use lablet_application::inbox::{GetInboxMessage, InboxReceipt, ReceiveCloudEvent};
use lablet_application::RequestContext;
use serde_json::{Map, Value};

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The longest `id`, `type` or `subject` accepted (CloudEvents sets no bound; a store must).
const MAX_ATTRIBUTE_CHARS: usize = 256;
/// The longest `source` (a URI reference) accepted.
const MAX_SOURCE_CHARS: usize = 1024;

/// An attribute's text, refused when blank, longer than its bound, or holding a control
/// character (which CloudEvents forbids in every string attribute).
fn attribute(text: &str, attribute: &str, prefix: &str) -> ApiResult<String> {
    let max = if attribute == "source" {
        MAX_SOURCE_CHARS
    } else {
        MAX_ATTRIBUTE_CHARS
    };
    match lablet_domain::text::name_problem(text, max) {
        None => Ok(text.trim().to_owned()),
        Some(problem) => Err(Problem::bad_request(format!("{prefix}{attribute}"), problem)),
    }
}

/// A required string attribute; `prefix` names where it came from in errors.
fn required(value: Option<&str>, name: &str, prefix: &str) -> ApiResult<String> {
    match value {
        Some(text) if !text.trim().is_empty() => attribute(text, name, prefix),
        _ => Err(Problem::bad_request(
            format!("{prefix}{name}"),
            "is a required CloudEvents attribute",
        )),
    }
}

/// An optional string attribute, checked like a required one when present.
fn optional(value: Option<&str>, name: &str, prefix: &str) -> ApiResult<Option<String>> {
    value.map(|text| attribute(text, name, prefix)).transpose()
}

fn time(value: Option<&str>, prefix: &str) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Problem::bad_request(format!("{prefix}time"), "must be an RFC 3339 timestamp"))
        })
        .transpose()
}

fn check_specversion(value: Option<&str>, prefix: &str) -> ApiResult<()> {
    match value {
        Some("1.0") => Ok(()),
        Some(other) => Err(Problem::bad_request(
            format!("{prefix}specversion"),
            format!("must be 1.0, not {other}"),
        )),
        None => Err(Problem::bad_request(
            format!("{prefix}specversion"),
            "is a required CloudEvents attribute",
        )),
    }
}

/// One event in structured form (a JSON object); `prefix` is `[i].` inside a batch.
fn structured(event: &Map<String, Value>, prefix: &str) -> ApiResult<ReceiveCloudEvent> {
    let text = |name: &str| -> ApiResult<Option<&str>> {
        match event.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Problem::bad_request(format!("{prefix}{name}"), "must be a string")),
        }
    };
    check_specversion(text("specversion")?, prefix)?;
    if event.contains_key("data_base64") {
        return Err(Problem::bad_request(
            format!("{prefix}data_base64"),
            "only JSON data is accepted",
        ));
    }
    Ok(ReceiveCloudEvent {
        id: required(text("id")?, "id", prefix)?,
        source: required(text("source")?, "source", prefix)?,
        event_type: required(text("type")?, "type", prefix)?,
        subject: optional(text("subject")?, "subject", prefix)?,
        time: time(text("time")?, prefix)?,
        data: event.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// One event in binary form: attributes in `ce-` headers, data in the body.
fn binary(headers: &HeaderMap, body: &[u8]) -> ApiResult<ReceiveCloudEvent> {
    let header = |name: &str| -> ApiResult<Option<&str>> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| Problem::bad_request(name, "must be visible ASCII"))
            })
            .transpose()
    };
    if header("ce-specversion")?.is_none() && header("ce-id")?.is_none() {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("send {STRUCTURED}, {BATCH}, or a binary-mode event with ce-* headers"),
        ));
    }
    check_specversion(header("ce-specversion")?, "ce-")?;
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        let media = media_type(headers);
        if !(media == "application/json" || media.ends_with("+json")) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "binary-mode data must be JSON",
            ));
        }
        serde_json::from_slice(body).map_err(|e| Problem::bad_request("data", format!("malformed JSON: {e}")))?
    };
    Ok(ReceiveCloudEvent {
        id: required(header("ce-id")?, "id", "ce-")?,
        source: required(header("ce-source")?, "source", "ce-")?,
        event_type: required(header("ce-type")?, "type", "ce-")?,
        subject: optional(header("ce-subject")?, "subject", "ce-")?,
        time: time(header("ce-time")?, "ce-")?,
        data,
    })
}

fn object(value: &Value, prefix: &str) -> ApiResult<Map<String, Value>> {
    value.as_object().cloned().ok_or_else(|| {
        let field = if prefix.is_empty() {
            "body".to_owned()
        } else {
            prefix.trim_end_matches('.').to_owned()
        };
        Problem::bad_request(field, "a CloudEvent must be a JSON object")
    })
}

async fn record(
    state: &AppState,
    ctx: &RequestContext,
    events: Vec<ReceiveCloudEvent>,
) -> ApiResult<Vec<InboxReceipt>> {
    let mut receipts = Vec::with_capacity(events.len());
    for event in events {
        receipts.push(state.mediator.send(event, ctx).await?);
    }
    Ok(receipts)
}

pub async fn receive(
    State(state): State<AppState>,
    Context(ctx): Context,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let media = media_type(&headers);
    if media == BATCH {
        let events: Value = parse_json_value(&body)?;
        let list = events
            .as_array()
            .ok_or_else(|| Problem::bad_request("body", "a batch must be a JSON array"))?;
        let parsed = list
            .iter()
            .enumerate()
            .map(|(i, event)| structured(&object(event, &format!("[{i}]."))?, &format!("[{i}].")))
            .collect::<ApiResult<Vec<_>>>()?;
        let receipts = record(&state, &ctx, parsed).await?;
        return Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "results": receipts }))).into_response());
    }
    let event = if media == STRUCTURED {
        structured(&object(&parse_json_value(&body)?, "")?, "")?
    } else {
        binary(&headers, &body)?
    };
    let mut receipts = record(&state, &ctx, vec![event]).await?;
    Ok((StatusCode::ACCEPTED, Json(receipts.remove(0))).into_response())
}

fn parse_json_value(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| Problem::bad_request("body", format!("malformed JSON: {e}")))
}

pub async fn status(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path((source, id)): Path<(String, String)>,
) -> ApiResult<Json<InboxReceipt>> {
    Ok(Json(state.mediator.send(GetInboxMessage { source, id }, &ctx).await?))
}
