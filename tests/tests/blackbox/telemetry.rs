//! Traces and logs of a server process: spans exported over OTLP/HTTP to a fake collector follow
//! a command from HTTP through the mediator and the event store into the projection, continuing
//! the caller's trace; JSON log lines carry the request's correlation id; malformed telemetry
//! settings stop the start.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use lablet_tests::process::{free_port, start_server, start_server_logging};
use lablet_tests::server::{admin_client, wait_ready};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// A span as the collector received it, with the service that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

/// An OTLP/HTTP trace receiver on an ephemeral port.
struct Collector {
    endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    match value {
        AnyValue::StringValue(text) => Some(text.clone()),
        AnyValue::IntValue(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Collector {
    async fn start() -> Collector {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let sink = received.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return (StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut sink = sink.lock().unwrap();
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .as_ref()
                        .and_then(|r| string_attribute(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                        sink.push(Received {
                            service: service.clone(),
                            span,
                        });
                    }
                }
                (StatusCode::OK, Vec::new())
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { endpoint, received }
    }

    /// The spans of trace `trace_id` once one named `name` has arrived (at most 20 s).
    async fn trace_with(&self, trace_id: &str, name: &str) -> Vec<Received> {
        for _ in 0..200 {
            let spans: Vec<Received> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|r| hex(&r.span.trace_id) == trace_id)
                .cloned()
                .collect();
            if spans.iter().any(|r| r.span.name == name) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no span {name} of trace {trace_id} arrived");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The names of `span`'s ancestors, nearest first, and the id of the outermost one's parent.
fn ancestry(span: &Span, by_id: &HashMap<String, &Span>) -> (Vec<String>, String) {
    let mut names = Vec::new();
    let mut parent = hex(&span.parent_span_id);
    while let Some(ancestor) = by_id.get(&parent) {
        names.push(ancestor.name.clone());
        parent = hex(&ancestor.parent_span_id);
    }
    (names, parent)
}

#[tokio::test]
async fn a_command_is_traced_from_http_through_the_store_into_the_projection() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "lablet-under-trace"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let mut server = start_server(LABLET, dir.path(), port, &env);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    let client = admin_client(dir.path());

    let response = client
        .post(format!("{base}/api/v1/lab-records/observations"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .json(&json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": "traced", "state": "STARTED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-request-id"],
        TRACE_ID,
        "the trace id is the correlation id"
    );
    let observed: Value = response.json().await.unwrap();

    let spans = collector.trace_with(TRACE_ID, "projection.apply").await;
    assert!(spans.iter().all(|r| r.service == "lablet-under-trace"));
    let by_id: HashMap<String, &Span> = spans.iter().map(|r| (hex(&r.span.span_id), &r.span)).collect();
    let named = |name: &str| -> Vec<&Span> { spans.iter().map(|r| &r.span).filter(|s| s.name == name).collect() };

    let http = named("POST /api/v1/lab-records/observations");
    assert_eq!(http.len(), 1, "one server span for the request");
    assert_eq!(
        hex(&http[0].parent_span_id),
        CALLER_SPAN_ID,
        "it continues the caller's trace"
    );
    assert_eq!(
        string_attribute(&http[0].attributes, "http.response.status_code").as_deref(),
        Some("200")
    );

    let appends = named("event_store.append");
    assert_eq!(appends.len(), 1, "one append");
    let (above_append, root_parent) = ancestry(appends[0], &by_id);
    assert_eq!(
        above_append,
        ["lab_record.observe", "POST /api/v1/lab-records/observations"],
        "the append runs in the mediator, inside the request"
    );
    assert_eq!(root_parent, CALLER_SPAN_ID);

    let projected = named("projection.apply");
    let lab_records = projected
        .iter()
        .find(|s| string_attribute(&s.attributes, "projection").as_deref() == Some("lab_records"))
        .expect("the lab_records projection applied the event in the caller's trace");
    assert_eq!(
        hex(&lab_records.parent_span_id),
        hex(&appends[0].span_id),
        "the projection continues from the append that wrote the event"
    );

    // The event keeps the append's trace context, for the projections and the CloudEvents.
    let stream = format!("lab_record-{}", observed["id"].as_str().unwrap());
    let page: Value = client
        .get(format!("{base}/api/v1/audit/streams/{stream}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"][0]["traceparent"],
        format!("00-{TRACE_ID}-{}-01", hex(&appends[0].span_id))
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn json_log_lines_carry_the_correlation_id_of_the_request_they_were_written_for() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("lablet.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let env = [("LABLET_LOG", "info"), ("LABLET_LOG_FORMAT", "json")];
    let mut server = start_server_logging(LABLET, dir.path(), port, &env, Stdio::from(log));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;

    let response = admin_client(dir.path())
        .post(format!("{base}/api/v1/api-keys"))
        .header("x-request-id", "req-7f3a")
        .json(&json!({"name": "grading-engine", "roles": ["integrator"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "req-7f3a");
    let anonymous = reqwest::get(format!("{base}/api/v1/instances")).await.unwrap();
    let made_up = anonymous.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        uuid::Uuid::parse_str(&made_up).is_ok(),
        "a new correlation id: {made_up}"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "lablet is serving"));
    let created: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "API key created")
        .collect();
    assert_eq!(created.len(), 1, "{text}");
    let correlation_ids: Vec<&Value> = created[0]["spans"]
        .as_array()
        .expect("the line names its spans")
        .iter()
        .filter_map(|span| span.get("correlation_id"))
        .collect();
    assert_eq!(correlation_ids, [&json!("req-7f3a")], "{}", created[0]);
    assert!(
        !text.contains("event_store."),
        "spans made for traces stay out of the log"
    );
}

#[test]
fn malformed_telemetry_settings_stop_the_start_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
        ("LABLET_LOG_FORMAT", "xml"),
        ("LABLET_LOG", "lablet=loud"),
    ] {
        let output = Command::new(LABLET)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("LABLET_DATA_DIR", dir.path())
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}={value} must stop the start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}
