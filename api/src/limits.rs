//! Limits every route shares: the size of a request body, the time a request may take, how
//! many requests are in flight (more are shed at once with 503 and `Retry-After` rather than
//! queued), and CORS, off unless origins are configured.
//!
//! `/health/*` and `/metrics` are never shed: an orchestrator must be able to ask a busy
//! instance whether it lives, and monitoring must see it being busy. A request that runs out of time is cancelled; a command cancelled that way may still
//! have been appended, so a client re-reads before it retries.

use crate::problem::Problem;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use lablet_infrastructure::config::HttpLimits;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower_http::cors::{Any, CorsLayer};

/// `router` with the limits applied.
pub fn apply(router: Router, limits: &HttpLimits) -> Router {
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let timeout = limits.request_timeout;
    let router = router
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            within(timeout, request, next)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            shed_when_full(in_flight.clone(), request, next)
        }))
        .layer(DefaultBodyLimit::max(limits.body_limit));
    match cors(&limits.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Answers 503 `request-timeout` when the handler has not answered within `timeout`.
async fn within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request-timeout",
                "Request timed out",
                format!(
                    "no answer within {} ms; a command may still have been applied, so read before retrying",
                    timeout.as_millis()
                ),
            );
            problem.retry_after = Some(1);
            problem.into_response()
        }
    }
}

/// Runs the request if a slot is free; otherwise answers 503 `overloaded` at once.
async fn shed_when_full(in_flight: Arc<Semaphore>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    match in_flight.try_acquire_owned() {
        Ok(_slot) => next.run(request).await,
        Err(_) => {
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Too many requests in flight",
                "the server is at its limit of concurrent requests; retry shortly",
            );
            problem.retry_after = Some(1);
            problem.into_response()
        }
    }
}

/// A CORS layer allowing `origins`, or none when no origin is configured.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers(Any)
            .expose_headers(Any)
            .max_age(Duration::from_secs(600)),
    )
}
