//! `/api/v1/audit`: the event log for auditors, read-only.

use super::{present, AppState};
use crate::extract::{Context, QueryParams};
use crate::problem::{ApiResult, Problem};
use axum::extract::{Path, State};
use axum::Json;
use lablet_application::audit::{LogPage, ReadLogPage, ReadStreamPage, StreamPage, StreamState, StreamStateAt};
use serde::Deserialize;

/// Page size of audit reads when none is asked for.
const DEFAULT_AUDIT_PAGE: usize = 100;

fn stream_name(text: &str) -> ApiResult<String> {
    let valid = text
        .split_once('-')
        .is_some_and(|(kind, id)| !kind.is_empty() && uuid::Uuid::parse_str(id).is_ok());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(Problem::bad_request(
            "stream",
            "must be <aggregate>-<uuid>, e.g. lab_record-…",
        ))
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    from_version: Option<u64>,
    limit: Option<usize>,
}

pub async fn stream(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(stream): Path<String>,
    QueryParams(params): QueryParams<StreamParams>,
) -> ApiResult<Json<StreamPage>> {
    let query = ReadStreamPage {
        stream: stream_name(&stream)?,
        from_version: params.from_version.unwrap_or(1),
        limit: params.limit.unwrap_or(DEFAULT_AUDIT_PAGE),
    };
    Ok(Json(state.mediator.send(query, &ctx).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    from_position: Option<u64>,
    limit: Option<usize>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

pub async fn events(
    State(state): State<AppState>,
    Context(ctx): Context,
    QueryParams(params): QueryParams<LogParams>,
) -> ApiResult<Json<LogPage>> {
    let query = ReadLogPage {
        from_position: params.from_position.unwrap_or(0),
        limit: params.limit.unwrap_or(DEFAULT_AUDIT_PAGE),
        event_type: present(params.event_type),
    };
    Ok(Json(state.mediator.send(query, &ctx).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateParams {
    at_position: Option<u64>,
}

pub async fn stream_state(
    State(state): State<AppState>,
    Context(ctx): Context,
    Path(stream): Path<String>,
    QueryParams(params): QueryParams<StateParams>,
) -> ApiResult<Json<StreamState>> {
    let query = StreamStateAt {
        stream: stream_name(&stream)?,
        at_position: params.at_position,
    };
    Ok(Json(state.mediator.send(query, &ctx).await?))
}
