//! RFC 9457 problem details: the one place where errors become HTTP answers.
//!
//! Every error a client can cause maps to a 4xx problem naming what was wrong; a 5xx means the
//! server or a store failed, never the input.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lablet_application::{AppError, FieldError};
use lablet_domain::DomainError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem answer (boxed: it travels in `Err` through every handler).
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

/// The fields of a problem document.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProblemDetails {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem(Box::new(ProblemDetails {
            kind: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            errors: Vec::new(),
            retry_after: None,
        }))
    }

    /// 400: the request cannot be read at all (malformed JSON, bad header, bad query string).
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        let error = FieldError::new(field, message);
        let mut problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            format!("{}: {}", error.field, error.message),
        );
        problem.errors.push(error);
        problem
    }

    /// 422: the request was read but its content is unacceptable.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-error",
            "Invalid input",
            detail,
        );
        problem.errors = errors;
        problem
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 403: the caller is known but may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }
}

impl From<AppError> for Problem {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Validation(errors) => Problem::invalid(errors),
            AppError::NotFound(what) => Problem::not_found(format!("{what} does not exist")),
            AppError::Forbidden(detail) => Problem::forbidden(detail),
            AppError::Rule(rule) => {
                let (slug, title) = match rule {
                    DomainError::InvalidTransition { .. } => ("invalid-transition", "Transition not allowed"),
                    DomainError::AlreadyExists { .. } => ("already-exists", "Already exists"),
                    DomainError::StaleLease(_) => ("stale-lease", "Lease taken over"),
                    _ => ("rule-violated", "Rule violated"),
                };
                Problem::new(StatusCode::CONFLICT, slug, title, rule.to_string())
            }
            AppError::Conflict(detail) => Problem::new(
                StatusCode::CONFLICT,
                "concurrency-conflict",
                "Concurrent update",
                format!("the entity kept changing while this command ran; retry it ({detail})"),
            ),
            fenced @ AppError::Fenced { .. } => {
                Problem::new(StatusCode::CONFLICT, "fenced", "Lease moved", fenced.to_string())
            }
            lagging @ AppError::ProjectionLagging { .. } => {
                let mut problem = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "projection-lagging",
                    "Projection lagging",
                    lagging.to_string(),
                );
                problem.retry_after = Some(1);
                problem
            }
            AppError::Unavailable(detail) => {
                tracing::error!(%detail, "request failed on a store");
                let mut problem = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "a store did not answer; the request changed nothing and may be retried",
                );
                problem.retry_after = Some(1);
                problem
            }
            AppError::TooSoon {
                detail,
                retry_after_secs,
            } => {
                let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-soon", "Too soon", detail);
                problem.retry_after = Some(retry_after_secs);
                problem
            }
            AppError::Upstream(detail) => {
                Problem::new(StatusCode::BAD_GATEWAY, "cml-failed", "CML server failed", detail)
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "request failed on a bug");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    "Internal error",
                    "the server failed on a bug; the request changed nothing and retrying it will not help",
                )
            }
        }
    }
}

impl From<lablet_application::ports::ApiKeyStoreError> for Problem {
    fn from(err: lablet_application::ports::ApiKeyStoreError) -> Self {
        AppError::from(err).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Handlers answer `Result<_, Problem>`; `?` on an application error does the mapping.
pub type ApiResult<T> = Result<T, Problem>;
