//! The span of every HTTP request: it carries the correlation id into every log line written
//! while the request is served, continues the caller's trace (`traceparent`), and is the root
//! of the request's own spans (guard, mediator, store). The answer names the correlation id in
//! `X-Request-Id` so a caller can quote it.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use lablet_application::ports::{IdSource, UuidV7Ids};
use lablet_application::trace_context::{continue_trace, parse_traceparent};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How a request is traced: its correlation id (`X-Request-Id` if sent and sane, else the
/// trace id of a well-formed `traceparent`, else a new UUIDv7) and the caller's trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace {
    pub correlation_id: String,
    pub traceparent: Option<String>,
}

impl RequestTrace {
    pub fn from_headers(headers: &HeaderMap) -> RequestTrace {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let traceparent = header("traceparent")
            .filter(|value| parse_traceparent(value).is_some())
            .map(str::to_owned);
        let request_id = header(REQUEST_ID_HEADER)
            .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        let correlation_id = request_id
            .or_else(|| traceparent.as_ref().map(|tp| tp[3..35].to_owned()))
            .unwrap_or_else(|| UuidV7Ids.new_id().to_string());
        RequestTrace {
            correlation_id,
            traceparent,
        }
    }
}

/// Runs the request inside its span and records the status it was answered with.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let trace = RequestTrace::from_headers(request.headers());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        url.path = %request.uri().path(),
        correlation_id = %trace.correlation_id,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(traceparent) = &trace.traceparent {
        continue_trace(&span, traceparent);
    }
    let correlation_id = HeaderValue::from_str(&trace.correlation_id).ok();
    request.extensions_mut().insert(trace);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(correlation_id) = correlation_id {
        response.headers_mut().insert(REQUEST_ID_HEADER, correlation_id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_request_id_comes_first_then_the_trace_id_then_a_new_id() {
        let both = RequestTrace::from_headers(&headers(&[("x-request-id", "req-1"), ("traceparent", TRACEPARENT)]));
        assert_eq!(both.correlation_id, "req-1");
        assert_eq!(both.traceparent.as_deref(), Some(TRACEPARENT));

        let traced = RequestTrace::from_headers(&headers(&[("traceparent", TRACEPARENT)]));
        assert_eq!(traced.correlation_id, "4bf92f3577b34da6a3ce929d0e0e4736");

        let neither = RequestTrace::from_headers(&HeaderMap::new());
        assert!(Uuid::parse_str(&neither.correlation_id).is_ok());
        assert_eq!(neither.traceparent, None);
    }

    #[test]
    fn malformed_trace_headers_are_ignored() {
        let long = "x".repeat(129);
        let bad = RequestTrace::from_headers(&headers(&[
            ("x-request-id", &long),
            ("traceparent", "00-xyz-00f067aa0ba902b7-01"),
        ]));
        assert_eq!(bad.traceparent, None);
        assert!(Uuid::parse_str(&bad.correlation_id).is_ok());
    }
}
