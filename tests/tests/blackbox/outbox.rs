//! The CloudEvents outbox: every public event reaches the sink at least once and in order per
//! subject, through random failures and a killed relay; events that keep failing are parked,
//! visible, and redriven; NATS JetStream receives them too.

use lablet_infrastructure::cloudevents::HttpMode;
use lablet_infrastructure::config::NatsSettings;
use lablet_tests::process::{free_port, run_cli};
use lablet_tests::server::{get_json, wait_ready};
use lablet_tests::sink::{assert_in_order_per_subject, repeated_deliveries, wait_for_delivery, Received, TestSink};
use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

fn observation(lab: &str, state: &str) -> Value {
    json!({"worker_id": WORKER, "lab_id": lab, "state": state})
}

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");

fn start_server(data_dir: &Path, port: u16, sink_url: &str) -> Child {
    let env = [
        ("LABLET_CLOUDEVENTS_SINK_URL", sink_url),
        ("LABLET_OUTBOX_RETRY_BASE_MS", "2"),
        ("LABLET_OUTBOX_RETRY_MAX_MS", "20"),
        ("LABLET_OUTBOX_MAX_ATTEMPTS", "10000"),
    ];
    lablet_tests::process::start_server(LABLET, data_dir, port, &env)
}

/// An event as the audit API shows it: id, subject, position, CloudEvent type, payload.
type LoggedEvent = (String, String, u64, String, Value);

/// Every event of the log, through the audit API.
async fn log_events(client: &reqwest::Client, base: &str) -> Vec<LoggedEvent> {
    let mut events = Vec::new();
    let mut from = 0;
    loop {
        let page = get_json(
            client,
            &format!("{base}/api/v1/audit/events?from_position={from}&limit=1000"),
        )
        .await;
        let items = page["items"].as_array().unwrap();
        for item in items {
            let stream = item["stream"].as_str().unwrap();
            let (_, subject) = stream.split_once('-').unwrap();
            let event_type = format!(
                "io.lablet.{}.v{}",
                item["event_type"].as_str().unwrap(),
                item["schema_version"]
            );
            events.push((
                item["event_id"].as_str().unwrap().to_owned(),
                subject.to_owned(),
                item["position"].as_u64().unwrap(),
                event_type,
                item["payload"].clone(),
            ));
        }
        match items.last() {
            Some(last) if items.len() == 1000 => from = last["position"].as_u64().unwrap(),
            _ => return events,
        }
    }
}

async fn write_observations(client: reqwest::Client, base: String, lab: usize, rounds: usize) {
    for round in 0..rounds {
        let state = if round % 2 == 0 { "STARTED" } else { "STOPPED" };
        // A write cut off by the kill is simply not acknowledged; the next round goes on.
        let _ = client
            .post(format!("{base}/api/v1/lab-records/observations"))
            .json(&observation(&format!("lab-{lab}"), state))
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_at_least_once_and_in_order_through_random_failures_and_a_killed_relay() {
    let sink = TestSink::default();
    sink.fail_at_random(0.3, 7);
    let sink_url = sink.start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = lablet_tests::server::admin_client(dir.path());

    let mut server = start_server(dir.path(), port, &sink_url);
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let writers: Vec<_> = (0..8)
        .map(|lab| tokio::spawn(write_observations(client.clone(), base.clone(), lab, 100)))
        .collect();
    let waiting = std::time::Instant::now();
    while sink.received().len() < 150 {
        assert!(waiting.elapsed() < Duration::from_secs(60), "the relay delivers");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let delivered_before: HashSet<String> = sink.received().into_iter().map(|r| r.id).collect();

    let mut server = start_server(dir.path(), port, &sink_url);
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let written_before = log_events(&client, &base).await.len();
    assert!(
        delivered_before.len() < written_before,
        "the relay was killed mid-stream ({} of {written_before} delivered)",
        delivered_before.len()
    );
    let writers: Vec<_> = (0..8)
        .map(|lab| tokio::spawn(write_observations(client.clone(), base.clone(), lab + 4, 20)))
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }

    let log = log_events(&client, &base).await;
    assert!(log.len() > written_before + 100, "the writers wrote after the restart");
    let wanted: HashSet<String> = log.iter().map(|(id, ..)| id.clone()).collect();
    wait_for_delivery(&sink, &wanted, 60).await;
    server.kill().unwrap();
    let _ = server.wait();

    let received = sink.received();
    // A restart sends again only what was in flight when the relay was killed: at most one run
    // (64 events) per subject being delivered, and there are 8 subjects (labs) here; with only
    // a checkpoint, every event after the oldest undelivered one was sent again.
    let repeated = repeated_deliveries(&received);
    lablet_tests::report_measure(
        "outbox deliveries repeated after a kill -9",
        &format!("{repeated} of {} events", received.len() - repeated),
    );
    assert!(repeated <= 8 * 64, "{repeated} deliveries repeated after the kill");
    assert!(
        sink.refused() > 50,
        "the sink failed often ({} refusals)",
        sink.refused()
    );
    assert_in_order_per_subject(&received);
    let by_id: HashMap<&str, &LoggedEvent> = log.iter().map(|e| (e.0.as_str(), e)).collect();
    for event in &received {
        let (_, subject, position, event_type, payload) = by_id[event.id.as_str()];
        assert_eq!(&event.subject, subject);
        assert_eq!(event.sequence, *position);
        assert_eq!(&event.event_type, event_type);
        assert_eq!(event.source, "/lablet");
        assert_eq!(
            event.content_type, "application/json",
            "binary mode carries the data as the body"
        );
        assert_eq!(&event.body, payload, "the data is the event payload");
    }
}

fn fast_relay(server: &mut lablet_infrastructure::Settings, sink_url: &str, mode: HttpMode) {
    server.outbox.http = Some((sink_url.parse().unwrap(), mode));
    server.outbox.relay.max_attempts = 3;
    server.outbox.relay.retry_base = Duration::from_millis(5);
    server.outbox.relay.tick = Duration::from_millis(50);
}

async fn outbox(server: &TestServer) -> Value {
    let (status, body) = server.get("/api/v1/outbox").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the outbox overview until `done` holds, for at most 20 seconds.
async fn outbox_when(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let body = outbox(server).await;
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox never got there: {}", outbox(server).await);
}

fn cli(server: &TestServer, args: &[&str]) -> String {
    let output = run_cli(LABLET, &server.settings.data_dir, args);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subject_is_parked_visibly_while_others_flow_and_a_redrive_delivers_it_in_order() {
    let sink = TestSink::default();
    let sink_url = sink.start().await;
    let server = TestServer::start_with(|s| fast_relay(s, &sink_url, HttpMode::Structured)).await;

    let (_, first, _) = server
        .post("/api/v1/lab-records/observations", &observation("stuck", "STARTED"))
        .await;
    let stuck = first["id"].as_str().unwrap().to_owned();
    sink.poison(&stuck);
    // The first event of `stuck` may already be out; a later one is then the one that fails.
    for state in ["STOPPED", "STARTED", "STOPPED"] {
        server
            .post("/api/v1/lab-records/observations", &observation("stuck", state))
            .await;
    }
    for state in ["STARTED", "STOPPED"] {
        server
            .post("/api/v1/lab-records/observations", &observation("flowing", state))
            .await;
    }
    let head = server.head_position().await;
    let body = outbox_when(&server, |b| b["sinks"][0]["checkpoint"] == head).await;

    let parked = body["parked"].as_array().unwrap();
    assert!(
        parked.len() >= 3,
        "the failing event and those behind it are parked: {body}"
    );
    assert!(
        parked.iter().all(|p| p["subject"] == stuck.as_str()),
        "only the failing subject: {body}"
    );
    let failed = &parked[0];
    assert_eq!(failed["attempts"], 3);
    assert!(failed["last_error"].as_str().unwrap().contains("503"), "{failed}");
    assert!(failed["held_behind"].is_null());
    for behind in &parked[1..] {
        assert_eq!(behind["held_behind"], failed["event_id"], "{behind}");
    }
    assert_eq!(body["sinks"][0]["sink"], "http");
    assert_eq!(body["sinks"][0]["lag"], 0);
    assert_eq!(body["sinks"][0]["parked"], parked.len());
    let flowing: Vec<Received> = sink.received().into_iter().filter(|r| r.subject != stuck).collect();
    assert_eq!(
        flowing.len(),
        2,
        "the other subject kept flowing (discovered, state changed)"
    );
    assert!(flowing.iter().all(|r| r.content_type == "application/cloudevents+json"));
    assert_eq!(flowing[0].body["specversion"], "1.0");

    let listed = cli(&server, &["outbox", "parked"]);
    assert!(listed.contains(failed["event_id"].as_str().unwrap()), "{listed}");
    assert!(listed.contains("held behind"), "{listed}");

    // Redriving the last parked event redrives its whole subject, oldest first.
    sink.heal();
    let last_id = parked.last().unwrap()["event_id"].as_str().unwrap().to_owned();
    let (status, answer, _) = server
        .post(&format!("/api/v1/outbox/parked/{last_id}/redrive"), &json!({}))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["marked"], 1);
    outbox_when(&server, |b| b["parked"].as_array().unwrap().is_empty()).await;
    let received = sink.received();
    let stuck_positions: Vec<u64> = received
        .iter()
        .filter(|r| r.subject == stuck)
        .map(|r| r.sequence)
        .collect();
    let expected: Vec<u64> = parked.iter().map(|p| p["position"].as_u64().unwrap()).collect();
    assert!(
        stuck_positions.ends_with(&expected),
        "{stuck_positions:?} ends with {expected:?}"
    );
    assert_in_order_per_subject(&received);

    // Bad redrives change nothing.
    let (status, problem, _) = server
        .post("/api/v1/outbox/parked/not-a-uuid/redrive", &json!({}))
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "event_id");
    let (status, _, _) = server
        .post(&format!("/api/v1/outbox/parked/{last_id}/redrive"), &json!({}))
        .await;
    assert_eq!(status, 404, "no longer parked");
    let (status, problem) = server.get("/api/v1/outbox?limit=0").await;
    assert_eq!(status, 422, "{problem}");

    // The CLI redrives too: park another subject, heal, `lablet outbox redrive --all`.
    let (_, other, _) = server
        .post("/api/v1/lab-records/observations", &observation("later", "STARTED"))
        .await;
    let later = other["id"].as_str().unwrap().to_owned();
    sink.poison(&later);
    server
        .post("/api/v1/lab-records/observations", &observation("later", "STOPPED"))
        .await;
    outbox_when(&server, |b| {
        b["parked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["subject"] == later.as_str())
    })
    .await;
    sink.heal();
    let said = cli(&server, &["outbox", "redrive", "--all"]);
    assert!(said.contains("marked for redrive"), "{said}");
    outbox_when(&server, |b| b["parked"].as_array().unwrap().is_empty()).await;
    let later_events = sink.received().into_iter().filter(|r| r.subject == later).count();
    assert!(later_events >= 2, "both events of the redriven subject arrived");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_to_nats_jetstream_one_subject_per_event_type() {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let stream_name = format!("LABLET_TEST_{tag}");
    let prefix = format!("lablet_test_{tag}");
    let nats = NatsSettings {
        url: "nats://127.0.0.1:4222".into(),
        stream: stream_name.clone(),
        subject_prefix: prefix.clone(),
    };
    let server = TestServer::start_with(|s| {
        s.outbox.nats = Some(nats);
        s.outbox.relay.tick = Duration::from_millis(50);
    })
    .await;
    for state in ["STARTED", "STOPPED", "STARTED"] {
        server
            .post("/api/v1/lab-records/observations", &observation("n1", state))
            .await;
        server
            .post("/api/v1/lab-records/observations", &observation("n2", state))
            .await;
    }
    let head = server.head_position().await;
    let body = outbox_when(&server, |b| b["sinks"][0]["checkpoint"] == head).await;
    assert_eq!(body["sinks"][0]["sink"], "nats");

    let client = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("NATS runs on this machine");
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
    let messages = stream.info().await.unwrap().state.messages;
    assert_eq!(messages, head, "one message per event");
    let mut last_per_subject: HashMap<String, u64> = HashMap::new();
    for sequence in 1..=messages {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let event_type = event["type"].as_str().unwrap();
        let short = event_type
            .strip_prefix("io.lablet.")
            .and_then(|t| t.rsplit_once(".v"))
            .map(|(t, _)| t)
            .unwrap();
        assert_eq!(message.subject.as_str(), format!("{prefix}.{short}"));
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["source"], "/lablet");
        let sequence = event["sequence"].as_str().unwrap();
        assert_eq!(sequence.len(), 20, "zero-padded: {sequence}");
        let position: u64 = sequence.parse().unwrap();
        let subject = event["subject"].as_str().unwrap().to_owned();
        let previous = last_per_subject.insert(subject, position).unwrap_or(0);
        assert!(position > previous, "in order per subject");
        assert!(
            event["data"].as_object().is_some_and(|data| !data.is_empty()),
            "{event}"
        );
    }
    jetstream.delete_stream(&stream_name).await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_counts_what_is_outstanding_not_everything_after_a_subject_stuck_in_retries() {
    let sink = TestSink::default();
    let sink_url = sink.start().await;
    let server = TestServer::start_with(|s| {
        fast_relay(s, &sink_url, HttpMode::Binary);
        // Retried for a long while before it would be parked.
        s.outbox.relay.max_attempts = 100_000;
        s.outbox.relay.retry_cap = Duration::from_millis(20);
    })
    .await;
    let (_, first, _) = server
        .post("/api/v1/lab-records/observations", &observation("stuck", "STARTED"))
        .await;
    sink.poison(first["id"].as_str().unwrap());
    server
        .post("/api/v1/lab-records/observations", &observation("stuck", "STOPPED"))
        .await;
    for round in 0..20 {
        let state = if round % 2 == 0 { "STARTED" } else { "STOPPED" };
        server
            .post("/api/v1/lab-records/observations", &observation("flowing", state))
            .await;
    }
    let head = server.head_position().await;
    // Every event of `flowing` arrives while `stuck` holds the checkpoint back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sink.received().iter().filter(|r| r.subject != first["id"]).count() < 20 {
        assert!(std::time::Instant::now() < deadline, "the flowing subject is delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = outbox_when(&server, |b| b["sinks"][0]["lag"].as_u64().is_some_and(|lag| lag <= 2)).await;
    let checkpoint = body["sinks"][0]["checkpoint"].as_u64().unwrap();
    assert!(
        checkpoint < head - 10,
        "the stuck subject holds the checkpoint back: {body}"
    );
    assert!(
        body["parked"].as_array().unwrap().is_empty(),
        "nothing parked yet: {body}"
    );
    server.stop().await;
}
