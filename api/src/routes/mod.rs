//! The HTTP surface: every route, its state, and the answers shared by all of them.

pub mod api_keys;
mod audit;
mod cluster;
mod definitions;
mod endpoints;
mod health;
mod inbox;
mod instances;
mod lab_records;
mod live;
pub mod metrics;
mod outbox;
pub mod table;
mod work_order_endpoints;
mod work_orders;
mod worker_templates;
mod workers;

use crate::auth::{Access, Authenticator};
use crate::extract::POSITION_HEADER;
use crate::problem::{ApiResult, Problem};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
pub use endpoints::endpoints;
use lablet_application::ports::read_models::{Filter, ListQuery};
use lablet_application::ports::{ApiKeyStore, CollectionSpec, EventStore, ListPage, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_application::read_model_queries::{GetDocument, ListDocuments, DEFAULT_PAGE, MAX_PAGE};
use lablet_application::repository::CommandOutcome;
use lablet_application::{Mediator, RequestContext};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;
use work_order_endpoints::work_order_endpoints;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub mediator: Arc<Mediator>,
    pub events: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub progress: ProjectionProgress,
    pub projections: Arc<Vec<&'static str>>,
    pub metrics: Arc<lablet_application::metrics::Metrics>,
    pub authenticator: Arc<Authenticator>,
    /// Refreshes one worker's labs on demand.
    pub labs_refresh: Arc<lablet_application::fleet::refresh::LabsRefresh>,
    /// The OpenAPI document of [`endpoints`], made once at start.
    pub openapi: Arc<Value>,
    /// Set once shutdown has begun: readiness fails and every answer closes its connection.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// This replica's leases: which singleton roles it runs now.
    pub leadership: Arc<lablet_application::leadership::Leadership>,
    /// This replica's claim index of work orders (also the queue's figures in `/metrics`).
    pub work_queue: Arc<lablet_application::work_orders::WorkQueue>,
}

/// A read-model document: its fields differ by collection; every one has these.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Document {
    pub id: String,
    /// The version of the entity's stream the document reflects.
    pub version: u64,
    pub updated_at: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A page of read-model documents.
#[derive(Serialize, schemars::JsonSchema)]
pub struct DocumentPage {
    pub items: Vec<Document>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The router of every endpoint, each behind its guard.
pub fn router(state: AppState, metrics_public: bool) -> Router {
    table::build_router(endpoints(metrics_public), &state.authenticator)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn openapi_document(State(state): State<AppState>) -> Json<Value> {
    Json(state.openapi.as_ref().clone())
}

async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!("no route for {}", uri.path())).with_instance(uri.path().to_owned())
}

async fn method_not_allowed(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{} does not accept this method", uri.path()),
    )
}

/// The answer of a command that created an entity.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Created {
    pub id: uuid::Uuid,
    pub version: u64,
    /// The log position of the command's last event: wait for it with `Lablet-Min-Position`.
    pub position: u64,
}

/// The answer of a command: its outcome as JSON and its last position in `Lablet-Position`.
/// The answer to a command that created an entity of the collection at `path`
/// (`/api/v1/workers`): 201 with the entity's `Location`.
pub fn created_answer(path: &str, outcome: CommandOutcome) -> Response {
    let location = HeaderValue::try_from(format!("{path}/{}", outcome.id)).ok();
    let mut response = command_answer(StatusCode::CREATED, outcome);
    if let Some(location) = location {
        response.headers_mut().insert(axum::http::header::LOCATION, location);
    }
    response
}

pub fn command_answer(status: StatusCode, outcome: CommandOutcome) -> Response {
    let position = HeaderValue::from(outcome.position);
    let mut response = if status == StatusCode::CREATED {
        let body = Created {
            id: outcome.id,
            version: outcome.version,
            position: outcome.position,
        };
        (status, Json(body)).into_response()
    } else {
        (status, Json(outcome)).into_response()
    };
    response.headers_mut().insert(POSITION_HEADER, position);
    response
}

/// Paging parameters common to every list.
pub struct Paging {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub include_history: Option<bool>,
}

impl Paging {
    /// The list query for these parameters and `filters`.
    pub fn query(self, filters: Vec<Filter>) -> ApiResult<ListQuery> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(Problem::bad_request(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        Ok(ListQuery {
            filters,
            limit,
            after_id: self.cursor.filter(|c| !c.is_empty()),
            include_history: self.include_history.unwrap_or(false),
        })
    }
}

/// One read-model document by the id in the path, after `min_position` if given.
pub async fn document(
    state: &AppState,
    ctx: &RequestContext,
    collection: CollectionSpec,
    id: &str,
    min_position: Option<u64>,
) -> ApiResult<Json<Box<RawValue>>> {
    let query = GetDocument {
        collection,
        id: crate::extract::parse_id("id", id)?.to_string(),
        min_position,
    };
    Ok(Json(state.mediator.send(query, ctx).await?))
}

/// A page of a collection matching `filters`, after `min_position` if given.
pub async fn page(
    state: &AppState,
    ctx: &RequestContext,
    collection: CollectionSpec,
    paging: Paging,
    filters: Vec<Filter>,
    min_position: Option<u64>,
) -> ApiResult<Json<ListPage>> {
    let query = ListDocuments {
        collection,
        query: paging.query(filters)?,
        min_position,
    };
    Ok(Json(state.mediator.send(query, ctx).await?))
}

/// A query parameter sent empty (`?state=`) counts as not sent.
pub fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A filter on `field` for `text` read as a `T` (a state or status) and written in its canonical
/// form by `canonical`; a value `T` does not know is a 400 naming the field.
pub fn parsed_equals<T: std::str::FromStr<Err = String>>(
    field: &'static str,
    text: &str,
    canonical: impl Fn(T) -> &'static str,
) -> Result<Filter, Problem> {
    let parsed: T = text.parse().map_err(|why: String| Problem::bad_request(field, why))?;
    Ok(Filter::Equals {
        field,
        value: canonical(parsed).to_owned(),
    })
}
