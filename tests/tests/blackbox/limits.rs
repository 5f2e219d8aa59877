//! Limits every route shares: body size, request time, requests in flight, CORS.

use lablet_tests::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_a_413_problem_and_writes_nothing() {
    let server = TestServer::start_with(|s| s.http_limits.body_limit = 1024).await;
    let head = server.head_position().await;
    let big = json!({"kind": "report.render", "payload": {"blob": "x".repeat(2048)}});
    let (status, problem, _) = server.post("/api/v1/work-orders", &big).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "/problems/payload-too-large");
    assert_eq!(server.head_position().await, head, "nothing was appended");
    let (status, _, _) = server
        .post("/api/v1/work-orders", &json!({"kind": "report.render", "payload": {}}))
        .await;
    assert_eq!(status, 201, "a small body still passes");
    server.stop().await;
}

/// A query that waits (for a position its stalled projection never reaches) and so holds its
/// slot.
async fn waiting_query(server: &TestServer, stalled_at: u64) -> reqwest::Response {
    server
        .client
        .get(server.url("/api/v1/lab-records"))
        .header("lablet-min-position", stalled_at.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_shed_at_once_but_health_still_answers() {
    let server = TestServer::start_with(|s| {
        s.http_limits.max_in_flight = 1;
        s.query_max_wait = Duration::from_millis(1500);
    })
    .await;
    let stalled_at = server.stall_lab_records().await;
    let (client, url) = (server.client.clone(), server.url("/api/v1/lab-records"));
    let holder = tokio::spawn(async move {
        // Until it gets the slot (a probe below may hold it for a moment).
        loop {
            let answer = client
                .get(&url)
                .header("lablet-min-position", stalled_at.to_string())
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let problem: serde_json::Value = answer.json().await.unwrap();
            if problem["type"] != "/problems/overloaded" {
                return (status, problem);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Once the holder has its slot, the next request is shed at once.
    let mut shed = None;
    for _ in 0..100 {
        let started = Instant::now();
        let answer = server
            .client
            .get(server.url("/api/v1/work-orders"))
            .send()
            .await
            .unwrap();
        if answer.status() == 503 {
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "shed at once, not queued"
            );
            shed = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shed = shed.expect("a request is shed while the slot is held");
    assert_eq!(shed.headers()["retry-after"], "1");
    let problem: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/overloaded");
    let (status, _) = server.get("/health/live").await;
    assert_eq!(status, 200, "health is never shed");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("lablet_http_requests_total{route=\"/api/v1/work-orders\",method=\"GET\",status=\"503\"}"),
        "shed requests are counted: {metrics}"
    );
    let (status, problem) = holder.await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(
        problem["type"], "/problems/projection-lagging",
        "the held query ran to its end"
    );
    let (status, _) = server.get("/api/v1/work-orders").await;
    assert_eq!(status, 200, "the slot is free again");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_runs_out_of_time_is_a_503_problem() {
    let server = TestServer::start_with(|s| {
        s.http_limits.request_timeout = Duration::from_millis(200);
        s.query_max_wait = Duration::from_secs(5);
    })
    .await;
    let stalled_at = server.stall_lab_records().await;
    let started = Instant::now();
    let response = waiting_query(&server, stalled_at).await;
    assert!(started.elapsed() < Duration::from_secs(2), "cut at the deadline");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/request-timeout");
    server.stop().await;
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/work-orders"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_unless_origins_are_configured_and_then_allows_only_them() {
    let closed = TestServer::start().await;
    let answer = preflight(&closed, "https://lab.example").await;
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    closed.stop().await;

    let open = TestServer::start_with(|s| s.http_limits.cors_origins = vec!["https://lab.example".into()]).await;
    let answer = preflight(&open, "https://lab.example").await;
    assert!(answer.status().is_success());
    assert_eq!(answer.headers()["access-control-allow-origin"], "https://lab.example");
    let answer = preflight(&open, "https://elsewhere.example").await;
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    let simple = open
        .client
        .get(open.url("/api/v1/work-orders"))
        .header("origin", "https://lab.example")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://lab.example");
    open.stop().await;
}
