//! Work orders through the HTTP API.

use lablet_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_work_order_is_leased_fails_and_waits_for_its_retry() {
    let server = TestServer::start().await;
    let submit = json!({"kind": "lab.start", "payload": {"lab": "x"}, "priority": 5, "max_attempts": 2,
                        "resources": {"cpu_cores": 2, "memory_gb": 4}});
    let (status, created, _) = server.post("/api/v1/work-orders", &submit).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let at = |action: &str| format!("/api/v1/work-orders/{id}/{action}");

    let (status, _, _) = server
        .post(&at("lease"), &json!({"executor": "exec-1", "lease_seconds": 60}))
        .await;
    assert_eq!(status, 200);
    let (status, problem, _) = server.post(&at("start"), &json!({"executor": "exec-2"})).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/rule-violated")),
        "only the lease holder starts"
    );
    let (status, _, _) = server.post(&at("start"), &json!({"executor": "exec-1"})).await;
    assert_eq!(status, 200);
    let (status, _, position) = server
        .post(&at("fail"), &json!({"error": "CML timed out", "retryable": true}))
        .await;
    assert_eq!(status, 200);

    let (_, doc) = server
        .get_at(&format!("/api/v1/work-orders/{id}"), position.unwrap())
        .await;
    assert_eq!(doc["state"], "waiting_retry");
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["errors"][0]["error"], "CML timed out");
    let next = chrono::DateTime::parse_from_rfc3339(doc["next_attempt_at"].as_str().unwrap()).unwrap();
    let failed_at = chrono::DateTime::parse_from_rfc3339(doc["errors"][0]["at"].as_str().unwrap()).unwrap();
    let wait = (next - failed_at).num_milliseconds();
    assert!(
        (2500..=5000).contains(&wait),
        "first backoff is 5 s with equal jitter, got {wait} ms"
    );

    let (status, problem, _) = server.post(&at("requeue"), &json!({})).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/rule-violated")),
        "too early"
    );
    let response = server.client.post(server.url(&at("cancel"))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "cancel needs no body");
    let (_, listed) = server
        .get_at(
            "/api/v1/work-orders?state=cancelled&kind=lab.start",
            server.head_position().await,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], id);
    let (status, _, _) = server.post(&at("cancel"), &json!({"reason": "again"})).await;
    assert_eq!(status, 409, "cancelled is final");
}

#[tokio::test]
async fn work_orders_default_what_was_left_out_and_list_by_kind() {
    let server = TestServer::start().await;
    let (status, _, _) = server.post("/api/v1/work-orders", &json!({"kind": "lab.wipe"})).await;
    assert_eq!(status, 201);
    let (_, _, position) = server.post("/api/v1/work-orders", &json!({"kind": "lab.start"})).await;
    let (_, wipes) = server
        .get_at("/api/v1/work-orders?kind=lab.wipe", position.unwrap())
        .await;
    let items = wipes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["max_attempts"].as_u64(), items[0]["priority"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(items[0]["state"], "pending");
}
