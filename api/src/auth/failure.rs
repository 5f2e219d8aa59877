//! Why a request was not let in, as RFC 6750 answers: 401 with `WWW-Authenticate`, 403 for a
//! caller whose roles do not reach, 503 when the identity provider cannot be asked.
//!
//! The descriptions say what was wrong with the credentials, never anything about the keys.

use crate::problem::Problem;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` and no `X-API-Key`.
    Missing,
    /// Credentials were sent but are not acceptable; the text says why.
    InvalidToken(&'static str),
    /// Credentials were accepted but the caller's roles do not include the route's.
    Forbidden { needs: String },
    /// The identity provider's keys could not be fetched.
    KeysUnavailable,
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let (problem, challenge) = match self {
            AuthFailure::Missing => (
                Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Unauthorized",
                    "send a bearer token in Authorization or an API key in X-API-Key",
                ),
                r#"Bearer realm="lablet""#.to_owned(),
            ),
            AuthFailure::InvalidToken(why) => (
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-token", "Invalid credentials", why),
                format!(r#"Bearer realm="lablet", error="invalid_token", error_description="{why}""#),
            ),
            AuthFailure::Forbidden { needs } => (
                Problem::forbidden(format!("this route needs one of the roles: {needs}")),
                r#"Bearer realm="lablet", error="insufficient_scope""#.to_owned(),
            ),
            AuthFailure::KeysUnavailable => {
                let mut problem = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity-provider-unavailable",
                    "Identity provider unavailable",
                    "the token's signing key could not be fetched from the identity provider; retry later",
                );
                problem.retry_after = Some(5);
                return problem.into_response();
            }
        };
        let mut response = problem.into_response();
        if let Ok(value) = HeaderValue::try_from(challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
