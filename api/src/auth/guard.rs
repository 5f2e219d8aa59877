//! The middleware in front of every route of the table: authenticate, authorise, and hand the
//! caller to the handler as a request extension.

use super::{Access, AuthFailure, Authenticator};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the guard of one route knows: how to authenticate, and the route's access.
#[derive(Clone)]
pub struct Guard {
    pub authenticator: Arc<Authenticator>,
    pub access: Access,
}

pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    if guard.access == Access::Public {
        return next.run(request).await;
    }
    let principal = match guard.authenticator.authenticate(request.headers()).await {
        Ok(principal) => principal,
        Err(failure) => return failure.into_response(),
    };
    if !guard.access.allows(&principal) {
        let needs = guard
            .access
            .granted()
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return AuthFailure::Forbidden { needs }.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
