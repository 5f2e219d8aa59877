//! Extractors that read requests strictly and explain every refusal: JSON bodies and query
//! strings name the offending field, headers name themselves.

use crate::auth::Principal;
use crate::problem::Problem;
use crate::telemetry::http::RequestTrace;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use lablet_application::{FieldError, RequestContext};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Header a command answer carries: the position of its last event.
pub const POSITION_HEADER: &str = "lablet-position";
/// Header a query may carry to wait until its read model has applied that position.
pub const MIN_POSITION_HEADER: &str = "lablet-min-position";

/// Cuts serde's " at line 1 column 7" tail: the field path says where.
fn without_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The field a serde error is about: the path, completed by the name in "missing field `x`" or
/// "unknown field `x`" messages (serde reports those at the enclosing object).
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        // "unknown field" errors already carry the field in their path.
        (path, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        (".", Some(name)) => name.to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (".", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    }
}

/// Parses a JSON object into `T`, mapping errors to problems: unreadable JSON is a 400,
/// well-formed JSON of the wrong shape a 422 naming the field (also an array where `T` wants
/// an object, and a NUL character anywhere: see [`crate::strict_json`]).
pub fn parse_json<T: DeserializeOwned + JsonSchema + 'static>(bytes: &[u8]) -> Result<T, Problem> {
    let starts_as_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(Problem::invalid(vec![FieldError::new("body", "must be a JSON object")]));
    }
    crate::strict_json::check::<T>(bytes).map_err(|refused| Problem::invalid(vec![refused]))?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = without_location(&inner.to_string());
        // Only well-formed JSON can be wrong in shape; check the whole text on this error path.
        let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if well_formed {
            // serde_json reports a non-string where an enum's name belongs as a syntax error
            // ("expected value"), though the text is well-formed: it is the field's type.
            let message = if inner.is_data() {
                message
            } else {
                "has the wrong type: expected one of the names this field takes".to_owned()
            };
            Problem::invalid(vec![FieldError::new(field_of(&path, &message), message)])
        } else {
            let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).err();
            let message = syntax.map_or(message, |e| without_location(&e.to_string()));
            Problem::bad_request("body", format!("malformed JSON: {message}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| Problem::bad_request("body", format!("malformed JSON: {}", without_location(&e.to_string()))))?;
    Ok(value)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// A JSON request body, required.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + JsonSchema + 'static> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_problem)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON request body that may be left out entirely (then `T::default()`).
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + JsonSchema + Default + 'static> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(body_problem)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json",
            ));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// A raw request body whose refusals (too large, unreadable) are problems like every other.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(body_problem)
    }
}

fn body_problem(err: axum::extract::rejection::BytesRejection) -> Problem {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(status, "payload-too-large", "Payload too large", err.body_text())
    } else {
        Problem::bad_request("body", err.body_text())
    }
}

/// A query string, strict: unknown parameters and bad values are a 400 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                Problem::bad_request(field_of(&path, &message), message)
            })
    }
}

/// The caller's request context: the authenticated caller as actor (`anonymous` on public
/// routes) and the request's correlation id and trace context ([`RequestTrace`]).
pub struct Context(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let trace = match parts.extensions.get::<RequestTrace>() {
            Some(trace) => trace.clone(),
            None => RequestTrace::from_headers(&parts.headers),
        };
        let principal = parts.extensions.get::<Principal>();
        Ok(Context(RequestContext {
            correlation_id: trace.correlation_id,
            causation_id: None,
            actor: principal.map_or_else(|| "anonymous".into(), |p| p.actor.clone()),
            traceparent: trace.traceparent,
            owner_scope: principal.and_then(Principal::owner_scope),
            fence: None,
        }))
    }
}

/// The `Lablet-Min-Position` header of a query, if sent.
pub struct MinPosition(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        match parts.headers.get(MIN_POSITION_HEADER) {
            None => Ok(MinPosition(None)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|p| MinPosition(Some(p)))
                .ok_or_else(|| Problem::bad_request("Lablet-Min-Position", "must be a non-negative integer position")),
        }
    }
}

/// Parses an id from the path; a malformed one is a 400 naming the field.
pub fn parse_id(field: &str, text: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text.trim()).map_err(|_| Problem::bad_request(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }

    fn field(result: Result<Body, Problem>) -> (u16, String) {
        let problem = result.unwrap_err();
        (problem.status, problem.errors[0].field.clone())
    }

    #[test]
    fn every_error_names_its_field() {
        assert_eq!(field(parse_json(br#"{"inner": {"count": 1}}"#)), (422, "name".into()));
        assert_eq!(
            field(parse_json(br#"{"name": 5, "inner": {"count": 1}}"#)),
            (422, "name".into())
        );
        assert_eq!(
            field(parse_json(br#"{"name": "a", "inner": {"count": -1}}"#)),
            (422, "inner.count".into())
        );
        assert_eq!(
            field(parse_json(br#"{"name": "a", "inner": {}}"#)),
            (422, "inner.count".into())
        );
        assert_eq!(
            field(parse_json(br#"{"name": "a", "inner": {"count": 1}, "x": 1}"#)),
            (422, "x".into())
        );
        assert_eq!(field(parse_json(br#"{"name": "a""#)), (400, "body".into()));
        assert_eq!(
            field(parse_json(br#"{"name": "a", "inner": {"count": 1}} trailing"#)),
            (400, "body".into())
        );
        assert_eq!(field(parse_json(b"")), (400, "body".into()));
    }
}
