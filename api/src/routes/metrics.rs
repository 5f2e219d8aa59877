//! `GET /metrics` in the Prometheus text format, and the middleware that counts HTTP requests.

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lablet_application::metrics::Gauge;
use lablet_application::outbox::GetOutbox;
use lablet_application::ports::LAG_COUNT_LIMIT;
use lablet_application::ports::{Clock, SystemClock};
use lablet_application::RequestContext;
use std::time::Instant;

/// Counts and times every request by route pattern (never the raw path: ids would make a
/// series per entity), method and status.
pub async fn record_http(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_http(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// How long the oldest event after `reached` has waited: 0 when nothing is waiting.
async fn waited_seconds(state: &AppState, reached: u64, head: u64) -> f64 {
    if reached >= head {
        return 0.0;
    }
    match state.events.read_all(reached, 1).await {
        Ok(next) => next.first().map_or(0.0, |event| {
            (SystemClock.now() - event.recorded_at).num_milliseconds().max(0) as f64 / 1000.0
        }),
        Err(_) => 0.0,
    }
}

/// Counters and histograms, plus gauges read now: the log head, each projection's position and
/// lag (in events and in seconds), each outbox sink's lag and parked events.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let head = state.events.head_position().await.unwrap_or(0);
    let mut gauges = vec![Gauge {
        name: "lablet_events_head_position",
        help: "The position of the last event in the log.",
        values: vec![(Vec::new(), head as f64)],
    }];
    gauges.push(Gauge {
        name: "lablet_lease_held",
        help: "1 while this replica holds the lease of a singleton role.",
        values: state
            .leadership
            .roles()
            .into_iter()
            .map(|(role, held)| (vec![("role", role)], if held { 1.0 } else { 0.0 }))
            .collect(),
    });
    gauges.extend(state.work_queue.gauges());
    let (mut positions, mut lags, mut waits) = (Vec::new(), Vec::new(), Vec::new());
    for name in state.projections.iter() {
        let applied = state.progress.applied(name).position;
        let label = || vec![("projection", name.to_string())];
        positions.push((label(), applied as f64));
        let lag = state.events.count_after(applied, LAG_COUNT_LIMIT).await.unwrap_or(0);
        lags.push((label(), lag as f64));
        waits.push((label(), waited_seconds(&state, applied, head).await));
    }
    gauges.push(Gauge {
        name: "lablet_projection_position",
        help: "The last log position each projection has applied.",
        values: positions,
    });
    gauges.push(Gauge {
        name: "lablet_projection_lag_events",
        help: "Events in the log that each projection has not applied yet.",
        values: lags,
    });
    gauges.push(Gauge {
        name: "lablet_projection_lag_seconds",
        help: "How long the oldest event each projection has not applied has been in the log.",
        values: waits,
    });
    if let Ok(outbox) = state
        .mediator
        .send(GetOutbox { limit: 1 }, &RequestContext::system())
        .await
    {
        let sink = |s: &str| vec![("sink", s.to_owned())];
        gauges.push(Gauge {
            name: "lablet_outbox_lag_events",
            help: "Events in the log each CloudEvents sink has not reached yet.",
            values: outbox.sinks.iter().map(|s| (sink(&s.sink), s.lag as f64)).collect(),
        });
        let mut waits = Vec::new();
        for s in &outbox.sinks {
            waits.push((sink(&s.sink), waited_seconds(&state, s.checkpoint, head).await));
        }
        gauges.push(Gauge {
            name: "lablet_outbox_lag_seconds",
            help: "How long the oldest event each sink has not reached has been in the log.",
            values: waits,
        });
        gauges.push(Gauge {
            name: "lablet_outbox_parked_events",
            help: "Events each sink parked after they kept failing.",
            values: outbox.sinks.iter().map(|s| (sink(&s.sink), s.parked as f64)).collect(),
        });
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&gauges),
    )
        .into_response()
}
