//! Work orders through the HTTP API.

use lablet_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_work_order_is_leased_fails_and_waits_for_its_retry() {
    let server = TestServer::start().await;
    let submit = json!({"kind": "report.render", "payload": {"lab": "x"}, "priority": 5, "max_attempts": 2,
                        "resources": {"cpu_cores": 2, "memory_gb": 4}});
    let (status, created, _) = server.post("/api/v1/work-orders", &submit).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let at = |action: &str| format!("/api/v1/work-orders/{id}/{action}");

    let (status, _, _) = server
        .post(&at("lease"), &json!({"executor": "exec-1", "lease_seconds": 60}))
        .await;
    assert_eq!(status, 200);
    let (status, problem, _) = server
        .post(&at("start"), &json!({"executor": "exec-2", "token": 1}))
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/rule-violated")),
        "only the lease holder starts"
    );
    let (status, _, _) = server
        .post(&at("start"), &json!({"executor": "exec-1", "token": 1}))
        .await;
    assert_eq!(status, 200);
    let (status, _, position) = server
        .post(
            &at("fail"),
            &json!({"token": 1, "error": "CML timed out", "retryable": true}),
        )
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
            "/api/v1/work-orders?state=cancelled&kind=report.render",
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
    let (status, _, _) = server.post("/api/v1/work-orders", &json!({"kind": "mail.send"})).await;
    assert_eq!(status, 201);
    let (_, _, position) = server
        .post("/api/v1/work-orders", &json!({"kind": "report.render"}))
        .await;
    let (_, wipes) = server
        .get_at("/api/v1/work-orders?kind=mail.send", position.unwrap())
        .await;
    let items = wipes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["max_attempts"].as_u64(), items[0]["priority"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(items[0]["state"], "pending");
}

/// On the clock port: a lease that runs out is failed by the timers (a retryable failure, so
/// the order waits for its next attempt), and a waiting order whose next attempt is due goes
/// back to pending by itself; with no attempt left it fails for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_leases_fail_and_due_retries_come_back_by_themselves() {
    use lablet_application::ports::{Clock, ManualClock};
    use std::sync::Arc;
    use std::time::Duration;
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    let server = TestServer::start_with_clock(
        |s| s.work_order_tick = Duration::from_secs(1),
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    let (_, created, _) = server
        .post(
            "/api/v1/work-orders",
            &json!({"kind": "report.render", "max_attempts": 2}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let order = format!("/api/v1/work-orders/{id}");
    let lease = json!({"executor": "exec-1", "lease_seconds": 30});
    // Leases the order, and waits until the read model shows it leased.
    let take = || async {
        let (status, _, position) = server.post(&format!("{order}/lease"), &lease).await;
        assert_eq!(status, 200);
        let (_, leased) = server.get_at(&order, position.unwrap()).await;
        assert_eq!(leased["state"], "preparing");
    };
    take().await;
    // Moves the clock `seconds` on, then a second at a time (each tick of the timers reads
    // the read model, which may not show the last command yet) until the order leaves `from`.
    let leaves = |from: &'static str, seconds: u64| {
        let (server, clock, order) = (&server, clock.clone(), order.clone());
        async move {
            clock.advance(Duration::from_secs(seconds));
            for _ in 0..200 {
                let (_, document) = server.get(&order).await;
                if document["state"] != from {
                    return document;
                }
                clock.advance(Duration::from_secs(1));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the order stayed {from}");
        }
    };
    // Within its 30 s nothing happens.
    clock.advance(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, document) = server.get(&order).await;
    assert_eq!(document["state"], "preparing", "{document}");
    // Past it, the lease is failed and the order waits for its next attempt.
    let waiting = leaves("preparing", 15).await;
    assert_eq!(waiting["state"], "waiting_retry", "{waiting}");
    assert_eq!(waiting["errors"][0]["error"], "lease expired");
    // When the next attempt is due (backoff from 5 s), it is pending again by itself.
    let pending = leaves("waiting_retry", 10).await;
    assert_eq!(pending["state"], "pending", "{pending}");
    // The second (last) attempt's lease runs out too: failed for good.
    take().await;
    let failed = leaves("preparing", 31).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["errors"].as_array().unwrap().len(), 2);
    server.stop().await;
}
