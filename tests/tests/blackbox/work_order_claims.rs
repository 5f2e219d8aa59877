//! Executors claiming work orders over HTTP: claim order, long polls, many claimers at once,
//! fencing tokens, renewals, unique keys and the queue's figures.

use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const CLAIM: &str = "/api/v1/work-orders/claim";

async fn submit(server: &TestServer, body: Value) -> String {
    let (status, created, _) = server.post("/api/v1/work-orders", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// Claims with `body`; answers the order held, or `Value::Null`.
async fn claim(server: &TestServer, body: Value) -> Value {
    let (status, answer, _) = server.post(CLAIM, &body).await;
    assert_eq!(status, 200, "{answer}");
    answer["order"].clone()
}

/// Claims with `body` at `url` from a task of its own; answers the whole answer.
async fn claim_on(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let answer = client.post(url).json(&body).send().await.expect("the server answers");
    answer.json().await.expect("JSON")
}

/// Submits an order of a kind of its own and claims it: once the claim returns, this replica's
/// claim index has read everything submitted before.
async fn index_caught_up(server: &TestServer) {
    submit(server, json!({"kind": "sync.marker"})).await;
    let marker = claim(
        server,
        json!({"executor": "sync", "kinds": ["sync.marker"], "wait_ms": 10000}),
    )
    .await;
    assert!(marker.is_object(), "the index never saw the marker");
}

#[tokio::test]
async fn a_claim_takes_the_highest_priority_then_the_oldest_order_that_fits() {
    let server = TestServer::start().await;
    let big = submit(
        &server,
        json!({"kind": "report.render", "priority": 5, "resources": {"cpu_cores": 8}}),
    )
    .await;
    let low = submit(&server, json!({"kind": "report.render", "priority": 0})).await;
    let high = submit(
        &server,
        json!({"kind": "report.render", "priority": 5, "payload": {"lab": "x"}}),
    )
    .await;
    let wipe = submit(&server, json!({"kind": "mail.send", "priority": 9})).await;
    index_caught_up(&server).await;

    let small = json!({"cpu_cores": 4, "memory_gb": 16, "storage_gb": 100, "max_nodes": 10});
    let first = claim(
        &server,
        json!({"executor": "e1", "kinds": ["report.render"], "capacity": small, "lease_seconds": 60}),
    )
    .await;
    assert_eq!(first["id"], high, "priority 5 before 0; the 8-core order does not fit");
    assert_eq!(
        (first["token"].as_u64(), first["payload"]["lab"].as_str()),
        (Some(1), Some("x"))
    );
    assert!(first["lease_expires_at"].is_string());
    let second = claim(&server, json!({"executor": "e1", "kinds": ["report.render"]})).await;
    assert_eq!(second["id"], big, "no capacity named: every order fits");
    let third = claim(&server, json!({"executor": "e1", "kinds": ["report.render"]})).await;
    assert_eq!(third["id"], low);
    let none = claim(&server, json!({"executor": "e1", "kinds": ["report.render"]})).await;
    assert!(none.is_null(), "{none}");
    let any = claim(&server, json!({"executor": "e2"})).await;
    assert_eq!(any["id"], wipe, "no kinds named: any kind");

    // The claimed orders are leased to their claimer.
    let position = server.head_position().await;
    let (_, document) = server.get_at(&format!("/api/v1/work-orders/{high}"), position).await;
    assert_eq!(
        (document["state"].as_str(), document["lease"]["executor"].as_str()),
        (Some("preparing"), Some("e1"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_claim_waits_for_an_order_and_takes_it_as_it_comes() {
    let server = TestServer::start().await;
    let began = Instant::now();
    let nothing = claim(
        &server,
        json!({"executor": "e1", "kinds": ["cache.warm"], "wait_ms": 300}),
    )
    .await;
    assert!(nothing.is_null());
    assert!(began.elapsed() >= Duration::from_millis(300), "it waited its 300 ms");

    let waiting = {
        let (client, url) = (server.client.clone(), server.url(CLAIM));
        tokio::spawn(async move {
            let began = Instant::now();
            let answer = claim_on(
                &client,
                &url,
                json!({"executor": "e1", "kinds": ["cache.warm"], "wait_ms": 20000}),
            )
            .await;
            (answer, began.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = submit(&server, json!({"kind": "cache.warm"})).await;
    let (answer, waited) = waiting.await.unwrap();
    assert_eq!(answer["order"]["id"], id.as_str(), "{answer}");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the submission, not by the end of the wait ({waited:?})"
    );
    server.stop().await;
}

/// Sixteen executors claim 300 orders at once: every order is held by exactly one of them, and
/// the order's lease names that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_executors_claiming_at_once_never_share_an_order() {
    let server = TestServer::start().await;
    let mut submitted = BTreeSet::new();
    for n in 0..300 {
        submitted.insert(submit(&server, json!({"kind": "mail.send", "priority": n % 3})).await);
    }
    index_caught_up(&server).await;
    let mut executors = Vec::new();
    for e in 0..16 {
        let (client, url) = (server.client.clone(), server.url(CLAIM));
        executors.push(tokio::spawn(async move {
            let executor = format!("exec-{e}");
            let mut held = Vec::new();
            loop {
                let answer = claim_on(
                    &client,
                    &url,
                    json!({"executor": executor, "kinds": ["mail.send"], "wait_ms": 200}),
                )
                .await;
                match answer["order"]["id"].as_str() {
                    Some(id) => held.push(id.to_owned()),
                    None => return (executor, held),
                }
            }
        }));
    }
    let mut holder = BTreeMap::new();
    for executor in executors {
        let (executor, held) = executor.await.unwrap();
        for id in held {
            assert!(
                holder.insert(id.clone(), executor.clone()).is_none(),
                "{id} claimed twice"
            );
        }
    }
    assert_eq!(holder.keys().cloned().collect::<BTreeSet<_>>(), submitted);
    let position = server.head_position().await;
    for (id, executor) in &holder {
        let (_, document) = server.get_at(&format!("/api/v1/work-orders/{id}"), position).await;
        assert_eq!(document["lease"]["executor"], executor.as_str(), "{document}");
        assert_eq!(document["attempt"], 1);
    }
    server.stop().await;
}

/// On the clock port: a slow executor's lease runs out and another takes the order over; every
/// call the first makes with its old token is refused (409 stale-lease) and changes nothing,
/// while the new holder renews its lease past its first term and completes the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_token_is_refused_and_a_renewed_lease_outlives_its_first_term() {
    use lablet_application::ports::{Clock, ManualClock};
    use std::sync::Arc;
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    let server = TestServer::start_with_clock(
        |s| s.work_order_tick = Duration::from_secs(1),
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    let id = submit(&server, json!({"kind": "image.build", "max_attempts": 3})).await;
    let order = format!("/api/v1/work-orders/{id}");
    let at = |action: &str| format!("{order}/{action}");
    let slow = claim(
        &server,
        json!({"executor": "slow", "kinds": ["image.build"], "wait_ms": 10000, "lease_seconds": 30}),
    )
    .await;
    assert_eq!(
        (slow["id"].as_str(), slow["token"].as_u64()),
        (Some(id.as_str()), Some(1))
    );
    let (status, _, _) = server
        .post(&at("start"), &json!({"executor": "slow", "token": 1}))
        .await;
    assert_eq!(status, 200);

    // The slow executor says nothing for 31 s: the timers expire its lease, and once the
    // backoff has passed the order is pending again and another executor claims it.
    clock.advance(Duration::from_secs(31));
    let mut fast = Value::Null;
    for _ in 0..300 {
        fast = claim(
            &server,
            json!({"executor": "fast", "kinds": ["image.build"], "lease_seconds": 30}),
        )
        .await;
        if fast.is_object() {
            break;
        }
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (fast["id"].as_str(), fast["token"].as_u64()),
        (Some(id.as_str()), Some(2)),
        "{fast}"
    );

    let stale = [
        ("start", json!({"executor": "slow", "token": 1})),
        ("renew", json!({"token": 1, "lease_seconds": 60})),
        ("complete", json!({"token": 1, "result": {"by": "slow"}})),
        ("fail", json!({"token": 1, "error": "late", "retryable": false})),
    ];
    for (action, body) in &stale {
        let (status, problem, _) = server.post(&at(action), body).await;
        assert_eq!(
            (status, problem["type"].as_str()),
            (409, Some("/problems/stale-lease")),
            "{action}: {problem}"
        );
    }
    let (status, _, _) = server
        .post(&at("start"), &json!({"executor": "fast", "token": 2}))
        .await;
    assert_eq!(status, 200);
    // Renewed every 20 s, the lease lives well past its first 30 s.
    for _ in 0..3 {
        let (status, renewed, _) = server
            .post(&at("renew"), &json!({"token": 2, "lease_seconds": 30}))
            .await;
        assert_eq!(status, 200, "{renewed}");
        clock.advance(Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let (status, _, position) = server
        .post(&at("complete"), &json!({"token": 2, "result": {"by": "fast"}}))
        .await;
    assert_eq!(status, 200, "the renewed lease was never expired");
    let (_, document) = server.get_at(&order, position.unwrap()).await;
    assert_eq!(document["state"], "completed");
    assert_eq!(document["result"]["by"], "fast");
    assert_eq!(
        document["errors"].as_array().unwrap().len(),
        1,
        "one expiry: {document}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("lablet_work_order_lease_expiries{kind=\"image.build\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("lablet_work_order_attempts{kind=\"image.build\"} 2"));
    server.stop().await;
}

#[tokio::test]
async fn a_second_submission_with_a_unique_key_answers_the_first_order() {
    let server = TestServer::start().await;
    let first = json!({"kind": "image.build", "unique_key": "import:instance-7", "payload": {"n": 1}});
    let (status, created, _) = server.post("/api/v1/work-orders", &first).await;
    assert_eq!(status, 201, "{created}");
    let again = json!({"kind": "image.build", "unique_key": "import:instance-7", "payload": {"n": 2}});
    let (status, answered, position) = server.post("/api/v1/work-orders", &again).await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(
        (answered["id"].clone(), answered["changed"].as_bool()),
        (created["id"].clone(), Some(false))
    );
    let other = json!({"kind": "image.build", "unique_key": "import:instance-8"});
    let (status, _, _) = server.post("/api/v1/work-orders", &other).await;
    assert_eq!(status, 201);

    let (_, listed) = server
        .get_at(
            "/api/v1/work-orders?kind=image.build",
            position.unwrap().max(server.head_position().await),
        )
        .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    let kept = items.iter().find(|item| item["id"] == created["id"]).unwrap();
    assert_eq!(
        (kept["payload"]["n"].as_u64(), kept["unique_key"].as_str()),
        (Some(1), Some("import:instance-7"))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_queue_figures_are_in_the_metrics() {
    let server = TestServer::start().await;
    for _ in 0..3 {
        submit(&server, json!({"kind": "backup.run"})).await;
    }
    let held = claim(
        &server,
        json!({"executor": "e1", "kinds": ["backup.run"], "wait_ms": 10000}),
    )
    .await;
    assert!(held.is_object());
    // The figures follow the log: they show the lease once the claim index has read it.
    let lines = [
        "lablet_work_orders{kind=\"backup.run\",state=\"pending\"} 2",
        "lablet_work_orders{kind=\"backup.run\",state=\"preparing\"} 1",
        "lablet_work_order_attempts{kind=\"backup.run\"} 1",
    ];
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = server.metrics().await;
        if lines.iter().all(|line| metrics.contains(line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in lines {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(metrics.contains("lablet_work_order_oldest_pending_seconds{kind=\"backup.run\"}"));
    server.stop().await;
}

#[tokio::test]
async fn a_bad_claim_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let kinds: Vec<String> = (0..65).map(|n| format!("k{n}")).collect();
    for (body, field) in [
        (json!({"executor": "e1", "wait_ms": 30001}), "wait_ms"),
        (json!({"executor": "", "kinds": []}), "executor"),
        (json!({"executor": "e1", "kinds": kinds}), "kinds"),
        (json!({"executor": "e1", "lease_seconds": 0}), "lease_seconds"),
    ] {
        let (status, problem, _) = server.post(CLAIM, &body).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(lablet_tests::server::error_fields(&problem), vec![field], "{problem}");
    }
    server.stop().await;
}
