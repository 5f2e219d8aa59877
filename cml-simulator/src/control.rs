//! The control API under `/_control`: what tests and the demo use to change the simulated world.
//!
//! - `POST /_control/labs` (a [`LabSeed`](crate::LabSeed)) → `{"id"}`;
//!   `PATCH /_control/labs/{id}`; `DELETE /_control/labs/{id}`
//! - `PUT /_control/faults` (a list of [`Fault`](crate::Fault)); `DELETE /_control/faults`
//! - `POST /_control/expire-tokens`: every token given so far is refused from now on
//! - `POST /_control/telemetry` `{category, user_id, lab_id?}`: a telemetry event now
//! - `PUT /_control/figures` `{cpu_percent, memory_percent, disk_percent, running_nodes}`
//! - `GET /_control/calls`: `{"METHOD path": count}` of the CML calls received
//! - `GET /_control/in-flight`: `{"now", "max"}` calls held by a delay fault at once

use crate::model::{Fault, Figures, LabChange, LabSeed, Shared};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/_control/labs", post(add_lab))
        .route(
            "/_control/labs/{id}",
            axum::routing::patch(change_lab).delete(delete_lab),
        )
        .route("/_control/faults", put(set_faults).delete(clear_faults))
        .route("/_control/expire-tokens", post(expire_tokens))
        .route("/_control/telemetry", post(add_telemetry))
        .route("/_control/figures", put(set_figures))
        .route("/_control/calls", get(calls))
        .route("/_control/in-flight", get(in_flight))
        .with_state(shared)
}

async fn add_lab(State(shared): State<Shared>, Json(seed): Json<LabSeed>) -> Response {
    let id = shared.add_lab(seed);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn change_lab(State(shared): State<Shared>, Path(id): Path<String>, Json(change): Json<LabChange>) -> StatusCode {
    if shared.lock().apply_change(&id, change) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn delete_lab(State(shared): State<Shared>, Path(id): Path<String>) -> StatusCode {
    let mut state = shared.lock();
    let before = state.labs.len();
    state.labs.retain(|lab| lab.id != id);
    if state.labs.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn set_faults(State(shared): State<Shared>, Json(faults): Json<Vec<Fault>>) -> StatusCode {
    shared.lock().faults = faults;
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(shared): State<Shared>) -> StatusCode {
    shared.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn expire_tokens(State(shared): State<Shared>) -> StatusCode {
    let now = Utc::now();
    shared.lock().tokens.values_mut().for_each(|expires| *expires = now);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryBody {
    category: String,
    user_id: String,
    lab_id: Option<String>,
}

async fn add_telemetry(State(shared): State<Shared>, Json(body): Json<TelemetryBody>) -> StatusCode {
    shared
        .lock()
        .record_telemetry(&body.category, &body.user_id, body.lab_id.as_deref());
    StatusCode::NO_CONTENT
}

async fn set_figures(State(shared): State<Shared>, Json(figures): Json<Figures>) -> StatusCode {
    shared.lock().figures = figures;
    StatusCode::NO_CONTENT
}

async fn calls(State(shared): State<Shared>) -> Response {
    Json(json!(shared.lock().calls)).into_response()
}

async fn in_flight(State(shared): State<Shared>) -> Response {
    let state = shared.lock();
    Json(json!({"now": state.delayed_in_flight, "max": state.delayed_max_in_flight})).into_response()
}
