//! Command answers carry their position; queries can wait for it, boundedly.

use lablet_tests::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_query_waits_for_the_position_it_asks_for_or_answers_lagging() {
    let server = TestServer::start_with(|s| s.query_max_wait = Duration::from_millis(300)).await;
    let body = json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": "l", "state": "STOPPED"});
    let (_, outcome, position) = server.post("/api/v1/lab-records/observations", &body).await;
    let position = position.expect("Lablet-Position header");
    let id = outcome["id"].as_str().unwrap();
    let (status, doc) = server.get_at(&format!("/api/v1/lab-records/{id}"), position).await;
    assert_eq!(status, 200, "read-your-writes sees its own write at once");
    assert_eq!(doc["version"], 1);

    let head = server.head_position().await;
    let (status, problem) = server.get_at("/api/v1/lab-records", head + 1000).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("Lablet-Min-Position")),
        "a position beyond the log's head is a mistake, not a wait: {problem}"
    );

    let stalled_at = server.stall_lab_records().await;
    let started = Instant::now();
    let (status, problem) = server.get_at("/api/v1/lab-records", stalled_at).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (503, Some("/problems/projection-lagging"))
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "bounded wait, took {waited:?}"
    );
}

#[tokio::test]
async fn readiness_reports_the_projections() {
    let server = TestServer::start().await;
    let (status, ready) = server.get("/health/ready").await;
    assert_eq!(status, 200);
    for name in ["lab_records", "lablet_instances", "work_orders"] {
        assert!(ready["projections"].get(name).is_some(), "{name} in {ready}");
    }
    let (status, live) = server.get("/health/live").await;
    assert_eq!((status, live["status"].as_str()), (200, Some("live")));
}
