//! The CML API under `/api/v0`: authentication, system, licensing, labs and telemetry.

use crate::model::{Shared, SimState};
use crate::shapes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api/v0/authenticate", post(authenticate))
        .route("/api/v0/system_information", get(system_information))
        .route("/api/v0/system_health", get(system_health))
        .route("/api/v0/system_stats", get(system_stats))
        .route("/api/v0/licensing", get(licensing))
        .route("/api/v0/labs", get(list_labs))
        .route("/api/v0/labs/{lab_id}", get(get_lab).delete(delete_lab))
        .route("/api/v0/labs/{lab_id}/download", get(download_lab))
        .route("/api/v0/labs/{lab_id}/{action}", put(lab_action))
        .route("/api/v0/import", post(import_lab))
        .route("/api/v0/telemetry/events", get(telemetry_events))
        .layer(middleware::from_fn_with_state(shared.clone(), count_and_inject_faults))
        .with_state(shared)
}

/// A call held by a delay fault; counted until it ends or its caller gives up.
struct DelayedCall(Shared);

impl DelayedCall {
    fn start(shared: &Shared) -> Self {
        shared.lock().delayed_started();
        DelayedCall(shared.clone())
    }
}

impl Drop for DelayedCall {
    fn drop(&mut self) {
        self.0.lock().delayed_finished();
    }
}

/// Counts every call, then fails, hangs or delays it if a fault matches its path.
async fn count_and_inject_faults(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let fault = {
        let mut state = shared.lock();
        *state.calls.entry(format!("{} {}", request.method(), path)).or_default() += 1;
        state
            .faults
            .iter()
            .find(|f| f.path_prefix.as_deref().is_none_or(|prefix| path.starts_with(prefix)))
            .cloned()
    };
    match fault {
        None => next.run(request).await,
        Some(fault) if fault.hang => std::future::pending().await,
        Some(fault) => match (fault.fail_status, fault.delay_ms) {
            (None, Some(delay)) => {
                let _held = DelayedCall::start(&shared);
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                next.run(request).await
            }
            (status, _) => {
                let status = status
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                shapes::error(status, "failure injected by the simulator")
            }
        },
    }
}

#[derive(Deserialize)]
struct UserAuthData {
    username: String,
    password: String,
}

fn new_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"sub": Uuid::new_v4(), "iat": Utc::now().timestamp()});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes());
    format!("{header}.{payload}.{signature}")
}

async fn authenticate(State(shared): State<Shared>, body: Option<Json<UserAuthData>>) -> Response {
    let Some(Json(auth)) = body else {
        return shapes::error(StatusCode::UNPROCESSABLE_ENTITY, "username and password are required");
    };
    let mut state = shared.lock();
    if auth.username != state.config.username || auth.password != state.config.password {
        return shapes::error(StatusCode::FORBIDDEN, "Authentication failed!");
    }
    let token = new_token();
    let expires = Utc::now() + state.config.token_ttl;
    state.tokens.insert(token.clone(), expires);
    Json(Value::String(token)).into_response()
}

/// Whether the caller's token is known and unexpired.
fn authorised(state: &SimState, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token
        .and_then(|t| state.tokens.get(t))
        .is_some_and(|expires| *expires > Utc::now())
}

/// Answers `body(state)` to an authorised caller, and CML's 401 to anyone else.
fn authorised_json(shared: &Shared, headers: &HeaderMap, body: impl FnOnce(&mut SimState) -> Response) -> Response {
    let mut state = shared.lock();
    if authorised(&state, headers) {
        body(&mut state)
    } else {
        shapes::error(StatusCode::UNAUTHORIZED, "No authorization token provided.")
    }
}

async fn system_information(State(shared): State<Shared>) -> Json<Value> {
    Json(shapes::system_information(&shared.lock()))
}

async fn system_health(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    authorised_json(&shared, &headers, |s| Json(shapes::system_health(s)).into_response())
}

async fn system_stats(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    authorised_json(&shared, &headers, |s| Json(shapes::system_stats(s)).into_response())
}

async fn licensing(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    authorised_json(&shared, &headers, |s| Json(shapes::licensing(s)).into_response())
}

async fn list_labs(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    authorised_json(&shared, &headers, |s| {
        let ids: Vec<&str> = s.labs.iter().map(|lab| lab.id.as_str()).collect();
        Json(json!(ids)).into_response()
    })
}

fn lab_not_found(id: &str) -> Response {
    shapes::error(StatusCode::NOT_FOUND, &format!("Lab not found: {id}"))
}

async fn get_lab(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    authorised_json(&shared, &headers, |s| match s.labs.iter().find(|lab| lab.id == id) {
        Some(lab) => Json(shapes::lab(lab)).into_response(),
        None => lab_not_found(&id),
    })
}

async fn delete_lab(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    authorised_json(&shared, &headers, |s| {
        let Some(index) = s.labs.iter().position(|lab| lab.id == id) else {
            return lab_not_found(&id);
        };
        if s.labs[index].state == "STARTED" {
            return shapes::error(StatusCode::BAD_REQUEST, "Lab is running; stop it first.");
        }
        s.labs.remove(index);
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn lab_action(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    authorised_json(&shared, &headers, |s| {
        let admin = s.admin_id.clone();
        let Some(lab) = s.lab_mut(&id) else {
            return lab_not_found(&id);
        };
        let (state, category) = match action.as_str() {
            "start" => ("STARTED", "start_lab"),
            "stop" => ("STOPPED", "stop_lab"),
            "wipe" if lab.state == "STARTED" => {
                return shapes::error(StatusCode::BAD_REQUEST, "Lab is running; stop it first.")
            }
            "wipe" => ("DEFINED_ON_CORE", "wipe_node"),
            _ => return shapes::error(StatusCode::NOT_FOUND, "Not Found"),
        };
        lab.state = state.to_owned();
        lab.modified = Utc::now();
        s.record_telemetry(category, &admin, Some(&id));
        StatusCode::NO_CONTENT.into_response()
    })
}

/// The lab's topology as CML exports it: YAML text, sent as a JSON string.
async fn download_lab(State(shared): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    authorised_json(&shared, &headers, |s| match s.labs.iter().find(|lab| lab.id == id) {
        Some(lab) => Json(Value::String(shapes::topology_yaml(lab))).into_response(),
        None => lab_not_found(&id),
    })
}

#[derive(Deserialize)]
struct ImportParams {
    title: Option<String>,
}

/// Creates a lab from a `Topology` object: its `lab` block, `nodes` and `links`.
async fn import_lab(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<ImportParams>,
    body: Option<Json<Value>>,
) -> Response {
    if !authorised(&shared.lock(), &headers) {
        return shapes::error(StatusCode::UNAUTHORIZED, "No authorization token provided.");
    }
    let Some(Json(topology)) = body else {
        return shapes::error(StatusCode::BAD_REQUEST, "Import failed: the body is not a topology.");
    };
    let Some(lab) = topology.get("lab").and_then(Value::as_object) else {
        return shapes::error(StatusCode::BAD_REQUEST, "Import failed: the topology has no lab.");
    };
    let text = |key: &str| lab.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let count = |key: &str| {
        topology
            .get(key)
            .and_then(Value::as_array)
            .map_or(0, |items| items.len() as u32)
    };
    let title = params.title.unwrap_or_else(|| text("title"));
    if title.is_empty() {
        return shapes::error(StatusCode::BAD_REQUEST, "Import failed: the lab has no title.");
    }
    let id = shared.add_lab(crate::LabSeed {
        title,
        description: text("description"),
        notes: text("notes"),
        node_count: count("nodes"),
        link_count: count("links"),
        ..crate::LabSeed::default()
    });
    Json(json!({"id": id, "warnings": []})).into_response()
}

async fn telemetry_events(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    authorised_json(&shared, &headers, |s| {
        Json(Value::Array(s.telemetry.clone())).into_response()
    })
}
