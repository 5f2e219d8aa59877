//! A CloudEvents HTTP sink for outbox tests: records what it accepts, and fails on purpose (at
//! random with a seeded generator, or always for chosen subjects).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub subject: String,
    pub sequence: u64,
    pub event_type: String,
    pub source: String,
    pub content_type: String,
    /// The event's data (binary mode) or the whole CloudEvent (structured mode).
    pub body: Value,
}

#[derive(Default)]
struct SinkState {
    received: Vec<Received>,
    refused: u64,
    /// Fail this share of deliveries (0..=1), drawn from `seed`.
    failure_rate: f64,
    seed: u64,
    poisoned: HashSet<String>,
}

#[derive(Clone, Default)]
pub struct TestSink {
    state: Arc<Mutex<SinkState>>,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn accept(State(sink): State<TestSink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = header(&headers, "content-type");
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let attribute = |name: &str| -> String {
        if content_type.starts_with("application/cloudevents+json") {
            match &body[name] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            }
        } else {
            header(&headers, &format!("ce-{name}"))
        }
    };
    let received = Received {
        id: attribute("id"),
        subject: attribute("subject"),
        sequence: attribute("sequence").parse().unwrap_or(0),
        event_type: attribute("type"),
        source: attribute("source"),
        content_type: content_type.clone(),
        body: body.clone(),
    };
    let mut state = sink.state.lock().unwrap();
    state.seed = state
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let draw = (state.seed >> 11) as f64 / (1u64 << 53) as f64;
    if state.poisoned.contains(&received.subject) || draw < state.failure_rate {
        state.refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    state.received.push(received);
    StatusCode::ACCEPTED
}

impl TestSink {
    /// Starts the sink on an ephemeral port; answers its URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = Router::new().route("/events", post(accept)).with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/events")
    }

    pub fn fail_at_random(&self, rate: f64, seed: u64) {
        let mut state = self.state.lock().unwrap();
        state.failure_rate = rate;
        state.seed = seed;
    }

    /// Refuses every event of `subject` until [`TestSink::heal`].
    pub fn poison(&self, subject: &str) {
        self.state.lock().unwrap().poisoned.insert(subject.to_owned());
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().poisoned.clear();
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn refused(&self) -> u64 {
        self.state.lock().unwrap().refused
    }
}

/// Waits until the sink has every id in `wanted`, for at most `seconds`.
pub async fn wait_for_delivery(sink: &TestSink, wanted: &HashSet<String>, seconds: u64) {
    for _ in 0..seconds * 20 {
        let got: HashSet<String> = sink.received().into_iter().map(|r| r.id).collect();
        if wanted.is_subset(&got) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: HashSet<String> = sink.received().into_iter().map(|r| r.id).collect();
    panic!(
        "{} of {} events never arrived",
        wanted.difference(&got).count(),
        wanted.len()
    );
}

/// Per subject, the positions in the order they first arrived must only grow.
pub fn assert_in_order_per_subject(received: &[Received]) {
    let mut seen = HashSet::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for event in received {
        if !seen.insert(event.id.clone()) {
            continue;
        }
        let previous = last.insert(&event.subject, event.sequence).unwrap_or(0);
        assert!(
            event.sequence > previous,
            "subject {} got position {} after {}",
            event.subject,
            event.sequence,
            previous
        );
    }
}

/// How many deliveries of `received` repeat an event delivered before.
pub fn repeated_deliveries(received: &[Received]) -> usize {
    let mut seen = HashSet::new();
    received.iter().filter(|event| !seen.insert(event.id.as_str())).count()
}
