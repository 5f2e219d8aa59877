//! `GET /api/v1/stream`: Server-Sent Events, one message per read-model change
//! `{collection, id, position, event_type}`, for the UI.
//!
//! The stream follows the event log, not the read models: each event of a projected aggregate
//! is one change, sent once its projection has applied it (so a client that fetches the document
//! sees the change). The SSE id is the log position; a client that reconnects with
//! `Last-Event-ID` resumes right after it without losing a change. Heartbeats keep idle
//! connections open.

use super::{present, AppState};
use crate::extract::QueryParams;
use crate::problem::{ApiResult, Problem};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use lablet_application::read_model_queries::{collection_of_kind, COLLECTIONS};
use lablet_application::subscription::Subscription;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long a change waits for its projection before it is sent anyway.
const PROJECTION_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveParams {
    collection: Option<String>,
    id: Option<String>,
}

struct Follower {
    state: AppState,
    subscription: Subscription,
    collection: Option<&'static str>,
    id: Option<String>,
    ready: VecDeque<Event>,
}

impl Follower {
    /// The next change to send, waiting for the log to grow; None when the log cannot be read.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some((Ok(event), self));
            }
            let batch = self.subscription.next_batch().await.ok()?;
            for envelope in batch {
                let Some(spec) = envelope.aggregate_kind().and_then(collection_of_kind) else {
                    continue;
                };
                let id = envelope.aggregate_id();
                if self.collection.is_some_and(|c| c != spec.name) || self.id.as_deref().is_some_and(|i| i != id) {
                    continue;
                }
                // Best effort: a projection stuck for longer still gets its change announced.
                let _ = self
                    .state
                    .progress
                    .wait_for(spec.name, envelope.position, PROJECTION_WAIT)
                    .await;
                let change = serde_json::json!({
                    "collection": spec.name,
                    "id": id,
                    "position": envelope.position,
                    "event_type": envelope.event_type,
                });
                let event = Event::default()
                    .id(envelope.position.to_string())
                    .event("change")
                    .data(change.to_string());
                self.ready.push_back(event);
            }
        }
    }
}

pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<LiveParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let collection = match present(params.collection) {
        None => None,
        Some(name) => Some(
            COLLECTIONS
                .iter()
                .find(|spec| spec.name == name)
                .map(|spec| spec.name)
                .ok_or_else(|| {
                    Problem::bad_request("collection", "must be lab_records, lablet_instances or work_orders")
                })?,
        ),
    };
    let from = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| Problem::bad_request("Last-Event-ID", "must be a position sent by this stream"))?,
        None => state
            .events
            .head_position()
            .await
            .map_err(|e| Problem::from(lablet_application::AppError::from(e)))?,
    };
    let follower = Follower {
        subscription: Subscription::new(state.events.clone(), from, 500),
        state,
        collection,
        id: present(params.id),
        ready: VecDeque::new(),
    };
    let changes = stream::unfold(follower, Follower::next);
    Ok(Sse::new(changes).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}
