//! Auditors: the audit API, and `lablet events verify | digest | replay` catching changes made
//! to the log behind Lablet's back.

use lablet_application::ports::EventStore;
use lablet_domain::AggregateKind;
use lablet_infrastructure::sqlite::SqliteEventStore;
use lablet_infrastructure::Settings;
use lablet_tests::TestServer;
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::Path;

const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

fn observation(lab: &str, state: &str) -> Value {
    json!({"worker_id": WORKER, "lab_id": lab, "state": state, "title": lab})
}

/// Runs `lablet events <args>` on `data_dir`; answers (exit code, stdout).
fn lablet_events(data_dir: &Path, args: &[&str]) -> (i32, String) {
    let args: Vec<&str> = std::iter::once("events").chain(args.iter().copied()).collect();
    let output = lablet_tests::process::run_cli(env!("CARGO_BIN_EXE_lablet-under-test"), data_dir, &args);
    (output.code.unwrap_or(-1), output.stdout)
}

#[tokio::test]
async fn the_audit_api_pages_streams_and_the_log_and_shows_past_states() {
    let server = TestServer::start().await;
    let observe = "/api/v1/lab-records/observations";
    let (_, first, _) = server.post(observe, &observation("a", "STOPPED")).await;
    server.post(observe, &observation("a", "STARTED")).await;
    server.post(observe, &observation("b", "STOPPED")).await;
    let (_, _, at_started) = server.post(observe, &observation("a", "BOOTED")).await;
    let stream = format!("lab_record-{}", first["id"].as_str().unwrap());

    let (status, page) = server.get(&format!("/api/v1/audit/streams/{stream}?limit=2")).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(
        items.iter().map(|e| e["version"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(items[0]["event_type"], "lab_record.discovered");
    assert_eq!(items[1]["payload"]["new"], "STARTED");
    assert_eq!(items[0]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(page["next_from_version"], 3);
    let (_, rest) = server
        .get(&format!("/api/v1/audit/streams/{stream}?from_version=3"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_from_version"].is_null());

    let (_, changes) = server.get("/api/v1/audit/events?type=lab_record.state_changed").await;
    let changes = changes["items"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|e| e["event_type"] == "lab_record.state_changed"));
    let (_, log) = server.get("/api/v1/audit/events?from_position=2&limit=1").await;
    assert_eq!(log["items"][0]["position"], 3);
    assert_eq!(log["next_from_position"], 3);

    let (status, then) = server
        .get(&format!("/api/v1/audit/streams/{stream}/state?at_position=2"))
        .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(
        (then["version"].as_u64(), then["state"]["state"].as_str()),
        (Some(2), Some("STARTED"))
    );
    let (_, now) = server.get(&format!("/api/v1/audit/streams/{stream}/state")).await;
    assert_eq!(
        (now["version"].as_u64(), now["state"]["state"].as_str()),
        (Some(3), Some("BOOTED"))
    );
    assert_eq!(now["at_position"].as_u64(), at_started);

    let (status, problem) = server.get("/api/v1/audit/streams/not-a-stream").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("stream")));
    let (status, _) = server
        .get("/api/v1/audit/streams/lab_record-7d444840-9dc0-11d1-b245-5ffdce74fad2")
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/api/v1/audit/events?limit=0").await;
    assert_eq!(status, 422);
}

/// Recomputes every hash of `stream` after its events were changed, as a careful forger would.
async fn rechain(path: &Path, stream: &str) {
    let store = SqliteEventStore::open(path).unwrap();
    let events = store.read_stream(stream, 1, 1000).await.unwrap();
    store.close();
    let conn = Connection::open(path).unwrap();
    let mut previous: Option<String> = None;
    for envelope in events {
        let hash = envelope.expected_hash(previous.as_deref());
        conn.execute(
            "UPDATE events SET hash = ?1 WHERE position = ?2",
            rusqlite::params![hash, envelope.position as i64],
        )
        .unwrap();
        previous = Some(hash);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_digest_catch_a_log_changed_behind_lablets_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(Settings::defaults_in(dir.path())).await;
    let observe = "/api/v1/lab-records/observations";
    let (_, first, _) = server.post(observe, &observation("a", "STOPPED")).await;
    for state in ["STARTED", "BOOTED", "STOPPED"] {
        server.post(observe, &observation("a", state)).await;
    }
    server.post(observe, &observation("b", "STARTED")).await;
    server.stop().await;
    let stream = format!("lab_record-{}", first["id"].as_str().unwrap());
    let log = dir.path().join("lablet.db");

    let (code, out) = lablet_events(dir.path(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified 5 events in 2 streams"), "{out}");
    let (_, digest_before) = lablet_events(dir.path(), &["digest"]);
    let (_, digest_at_2) = lablet_events(dir.path(), &["digest", "--at", "2"]);
    assert!(
        digest_before.starts_with("position 5 streams 2 sha256 "),
        "{digest_before}"
    );
    assert_ne!(digest_before, digest_at_2);
    let (code, replayed) = lablet_events(dir.path(), &["replay", "--stream", &stream]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = replayed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines.iter().map(|e| e["version"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let (_, window) = lablet_events(dir.path(), &["replay", "--from", "2", "--to", "3"]);
    assert_eq!(window.lines().count(), 2);

    // 1. A payload altered in place: the chain breaks at that event.
    let conn = Connection::open(&log).unwrap();
    conn.execute(
        "UPDATE events SET payload = replace(payload, 'BOOTED', 'STARTED') WHERE stream = ?1 AND version = 3",
        [&stream],
    )
    .unwrap();
    let (code, out) = lablet_events(dir.path(), &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN: stream {stream} version 3 (position 3)")),
        "{out}"
    );

    // 2. The forger recomputes the chain: it holds again, but the digest kept outside differs.
    rechain(&log, &stream).await;
    let (code, out) = lablet_events(dir.path(), &["verify"]);
    assert_eq!(code, 0, "a consistent forgery passes the chain check: {out}");
    let (_, digest_after) = lablet_events(dir.path(), &["digest"]);
    assert_ne!(digest_after, digest_before, "the digest exposes it");

    // 3. An event removed from the middle of a stream.
    conn.execute("DELETE FROM events WHERE stream = ?1 AND version = 2", [&stream])
        .unwrap();
    let (code, out) = lablet_events(dir.path(), &["verify"]);
    assert_eq!(code, 1);
    assert!(out.contains("version 3 follows version 1"), "{out}");
}

/// Creates one aggregate of `kind` through the API; answers its stream.
async fn create_one(server: &TestServer, kind: AggregateKind) -> String {
    let id = match kind {
        AggregateKind::LabRecord => {
            let (_, created, _) = server
                .post("/api/v1/lab-records/observations", &observation("k", "STOPPED"))
                .await;
            created["id"].clone()
        }
        AggregateKind::LabletInstance => {
            let (_, created, _) = server
                .post(
                    "/api/v1/instances",
                    &lablet_tests::server::instance_request(
                        &server.active_definition("audit-instance").await,
                        "r-audit",
                        "alice",
                    ),
                )
                .await;
            created["id"].clone()
        }
        AggregateKind::WorkOrder => {
            let (_, created, _) = server.post("/api/v1/work-orders", &json!({"kind": "mail.send"})).await;
            created["id"].clone()
        }
        AggregateKind::Worker => {
            let body = json!({"name": "w-audit", "region": "eu-west-1",
                "capacity": {"cpu_cores": 8, "memory_gb": 32, "storage_gb": 100, "max_nodes": 20}});
            let (_, created, _) = server.post("/api/v1/workers", &body).await;
            created["id"].clone()
        }
        AggregateKind::LabletDefinition => {
            let (status, created, _) = server
                .post(
                    "/api/v1/definitions",
                    &lablet_tests::server::definition_request("audit-lab", "1.0.0"),
                )
                .await;
            assert_eq!(status, 201, "{created}");
            created["id"].clone()
        }
        AggregateKind::WorkerTemplate => {
            let body = json!({"name": "audit-template", "spec": lablet_tests::server::template_spec(1.5)});
            let (status, created, _) = server.post("/api/v1/worker-templates", &body).await;
            assert_eq!(status, 201, "{created}");
            created["id"].clone()
        }
        AggregateKind::InboxMessage => {
            let event = json!({"specversion": "1.0", "id": "audit-1", "source": "/elsewhere",
                "type": "io.example.unhandled", "data": {}});
            let (status, receipt) = server
                .post_raw("/api/v1/events", "application/cloudevents+json", &event.to_string())
                .await;
            assert_eq!(status, 202, "{receipt}");
            let (_, received) = server.get("/api/v1/audit/events?type=inbox_message.received").await;
            let stream = received["items"][0]["stream"]
                .as_str()
                .expect("a received message")
                .to_owned();
            return stream;
        }
    };
    kind.stream(id.as_str().expect("an id").parse().expect("a uuid"))
}

#[tokio::test]
async fn the_state_of_a_stream_of_every_aggregate_kind_can_be_read() {
    let server = TestServer::start().await;
    for kind in AggregateKind::ALL {
        let stream = create_one(&server, kind).await;
        let (status, state) = server.get(&format!("/api/v1/audit/streams/{stream}/state")).await;
        assert_eq!(status, 200, "{kind}: {state}");
        assert!(state["version"].as_u64() >= Some(1), "{kind}: {state}");
        assert!(state["state"].is_object(), "{kind}: {state}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_no_longer_decodes_is_a_500_bug_not_a_503_outage() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(Settings::defaults_in(dir.path())).await;
    let (_, first, position) = server
        .post("/api/v1/lab-records/observations", &observation("a", "STOPPED"))
        .await;
    let id = first["id"].as_str().unwrap();
    // Projected before the log is changed, so the restarted server has nothing to project.
    let (status, _) = server
        .get_at(&format!("/api/v1/lab-records/{id}"), position.unwrap())
        .await;
    assert_eq!(status, 200);
    server.stop().await;
    let stream = format!("lab_record-{id}");
    let log = dir.path().join("lablet.db");
    Connection::open(&log)
        .unwrap()
        .execute(
            "UPDATE events SET payload = '{\"unexpected\":true}' WHERE stream = ?1",
            [&stream],
        )
        .unwrap();
    rechain(&log, &stream).await;

    let server = TestServer::start_in(Settings::defaults_in(dir.path())).await;
    let response = server
        .client
        .get(server.url(&format!("/api/v1/audit/streams/{stream}/state")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert!(
        response.headers().get("retry-after").is_none(),
        "a bug is not worth retrying"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/internal-error", "{problem}");
    let (status, problem, _) = server
        .post("/api/v1/lab-records/observations", &observation("a", "STARTED"))
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (500, Some("/problems/internal-error"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_is_no_longer_json_is_named_and_the_rest_still_verified() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(Settings::defaults_in(dir.path())).await;
    let observe = "/api/v1/lab-records/observations";
    let (_, a, _) = server.post(observe, &observation("a", "STOPPED")).await;
    server.post(observe, &observation("a", "STARTED")).await;
    let (_, b, _) = server.post(observe, &observation("b", "STOPPED")).await;
    server.post(observe, &observation("b", "STARTED")).await;
    server.stop().await;
    let (stream_a, stream_b) = (
        format!("lab_record-{}", a["id"].as_str().unwrap()),
        format!("lab_record-{}", b["id"].as_str().unwrap()),
    );
    let (_, digest_before) = lablet_events(dir.path(), &["digest"]);
    let conn = Connection::open(dir.path().join("lablet.db")).unwrap();
    // Stream a, version 1 (position 1): no longer JSON. Stream b, version 2 (position 4):
    // altered in place. Both must be named; neither may stop the walk.
    conn.execute(
        "UPDATE events SET payload = '{\"worker_id\": ' WHERE stream = ?1 AND version = 1",
        [&stream_a],
    )
    .unwrap();
    conn.execute(
        "UPDATE events SET payload = replace(payload, 'STARTED', 'BOOTED') WHERE stream = ?1 AND version = 2",
        [&stream_b],
    )
    .unwrap();

    let (code, out) = lablet_events(dir.path(), &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "BROKEN: stream {stream_a} version 1 (position 1): its content cannot be read"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("BROKEN: stream {stream_b} version 2 (position 4)")),
        "{out}"
    );
    assert!(out.contains("verified 4 events in 2 streams"), "{out}");
    assert!(out.contains("2 links do not hold"), "{out}");
    // The digest reads stored versions and hashes: the unreadable payload does not stop it,
    // and hashes were not touched, so it is unchanged.
    let (code, digest_after) = lablet_events(dir.path(), &["digest"]);
    assert_eq!(code, 0, "{digest_after}");
    assert_eq!(digest_after, digest_before);
    // Replaying the log names where it cannot go on.
    let output = lablet_tests::process::run_cli(
        env!("CARGO_BIN_EXE_lablet-under-test"),
        dir.path(),
        &["projections", "rebuild", "--all", "--verify"],
    );
    assert_ne!(output.code, Some(0));
    let said = format!("{}{}", output.stdout, output.stderr);
    assert!(said.contains(&format!("position 1 ({stream_a} version 1)")), "{said}");
}
