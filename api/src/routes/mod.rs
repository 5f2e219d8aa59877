//! The HTTP surface: every route, its state, and the answers shared by all of them.

mod audit;
mod health;
mod inbox;
mod instances;
mod lab_records;
mod live;
pub mod metrics;
mod outbox;
mod work_orders;

use crate::extract::POSITION_HEADER;
use crate::problem::{ApiResult, Problem};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lablet_application::ports::read_models::{Filter, ListQuery};
use lablet_application::ports::{EventStore, ReadModelStore};
use lablet_application::progress::ProjectionProgress;
use lablet_application::read_model_queries::{DEFAULT_PAGE, MAX_PAGE};
use lablet_application::repository::CommandOutcome;
use lablet_application::Mediator;
use serde::Serialize;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub mediator: Arc<Mediator>,
    pub events: Arc<dyn EventStore>,
    pub read_models: Arc<dyn ReadModelStore>,
    pub progress: ProjectionProgress,
    pub projections: Arc<Vec<&'static str>>,
    pub metrics: Arc<lablet_application::metrics::Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/lab-records/observations", post(lab_records::observe))
        .route("/api/v1/lab-records", get(lab_records::list))
        .route("/api/v1/lab-records/{id}", get(lab_records::get_one))
        .route("/api/v1/lab-records/{id}/remove", post(lab_records::remove))
        .route("/api/v1/workers/{worker_id}/labs", get(lab_records::list_for_worker))
        .route("/api/v1/instances", post(instances::request).get(instances::list))
        .route("/api/v1/instances/{id}", get(instances::get_one))
        .route("/api/v1/instances/{id}/transitions", post(instances::transition))
        .route("/api/v1/instances/{id}/timeslot", post(instances::extend_timeslot))
        .route("/api/v1/instances/{id}/score", post(instances::record_score))
        .route("/api/v1/work-orders", post(work_orders::submit).get(work_orders::list))
        .route("/api/v1/work-orders/{id}", get(work_orders::get_one))
        .route("/api/v1/work-orders/{id}/cancel", post(work_orders::cancel))
        .route("/api/v1/work-orders/{id}/lease", post(work_orders::lease))
        .route("/api/v1/work-orders/{id}/start", post(work_orders::start))
        .route("/api/v1/work-orders/{id}/complete", post(work_orders::complete))
        .route("/api/v1/work-orders/{id}/fail", post(work_orders::fail))
        .route("/api/v1/work-orders/{id}/requeue", post(work_orders::requeue))
        .route("/api/v1/audit/events", get(audit::events))
        .route("/api/v1/audit/streams/{stream}", get(audit::stream))
        .route("/api/v1/audit/streams/{stream}/state", get(audit::stream_state))
        .route("/api/v1/stream", get(live::stream))
        .route("/api/v1/events", post(inbox::receive))
        .route("/api/v1/events/inbox/{source}/{id}", get(inbox::status))
        .route("/api/v1/outbox", get(outbox::overview))
        .route("/api/v1/outbox/parked/{event_id}/redrive", post(outbox::redrive))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
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

/// The answer of a command: its outcome as JSON and its last position in `Lablet-Position`.
pub fn command_answer(status: StatusCode, outcome: CommandOutcome) -> Response {
    #[derive(Serialize)]
    struct Created {
        id: uuid::Uuid,
        version: u64,
        position: u64,
    }
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

/// A query parameter sent empty (`?state=`) counts as not sent.
pub fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
