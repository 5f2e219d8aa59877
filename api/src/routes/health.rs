//! Liveness and readiness.

use super::AppState;
use crate::problem::{ApiResult, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// The process answers.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Ready when both stores answer and every projection has caught up with the log once, and
/// not once shutdown has begun.
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let unavailable = |detail: String| {
        let mut problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready", detail);
        problem.retry_after = Some(1);
        problem
    };
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(unavailable("shutting down: send requests elsewhere".into()));
    }
    let head = state
        .events
        .head_position()
        .await
        .map_err(|e| unavailable(format!("event store: {e}")))?;
    let mut projections = serde_json::Map::new();
    for name in state.projections.iter() {
        state
            .read_models
            .checkpoint(name)
            .await
            .map_err(|e| unavailable(format!("read models: {e}")))?;
        let applied = state.progress.applied(name);
        if !applied.caught_up {
            return Err(unavailable(format!(
                "projection {name} has not caught up yet ({} of {head})",
                applied.position
            )));
        }
        projections.insert((*name).to_owned(), json!(applied.position));
    }
    Ok(Json(
        json!({"status": "ready", "head_position": head, "projections": projections}),
    ))
}
