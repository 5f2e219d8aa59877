//! Lab records through the HTTP API: observe, change, remove, query, history.

use lablet_tests::TestServer;
use serde_json::{json, Value};

const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

fn observation(lab: &str, state: &str, title: &str) -> Value {
    json!({
        "worker_id": WORKER, "lab_id": lab, "title": title, "description": "d", "notes": "",
        "state": state, "owner_username": "admin", "owner_fullname": "Admin", "node_count": 3,
        "link_count": 2, "groups": ["students"], "cml_created_at": "2026-01-01T10:00:00Z",
        "cml_modified_at": "2026-01-01T10:05:00Z"
    })
}

#[tokio::test]
async fn observations_record_only_what_changed() {
    let server = TestServer::start().await;
    let path = "/api/v1/lab-records/observations";

    let (status, first, position) = server.post(path, &observation("lab-1", "STOPPED", "OSPF")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["version"].as_u64(), first["changed"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(position, first["position"].as_u64(), "Lablet-Position matches the body");
    let id = first["id"].as_str().unwrap().to_owned();

    let (_, same, _) = server.post(path, &observation("lab-1", "STOPPED", "OSPF")).await;
    assert_eq!(
        (same["id"].as_str(), same["version"].as_u64(), same["changed"].as_bool()),
        (Some(id.as_str()), Some(1), Some(false))
    );
    assert_eq!(
        same["position"], first["position"],
        "nothing new: the last position again"
    );

    let (_, started, _) = server.post(path, &observation("lab-1", "STARTED", "OSPF")).await;
    assert_eq!(
        (started["version"].as_u64(), started["changed"].as_bool()),
        (Some(2), Some(true))
    );

    let (_, both, position) = server.post(path, &observation("lab-1", "BOOTED", "OSPF v2")).await;
    assert_eq!(
        both["version"].as_u64(),
        Some(4),
        "details and state changed: two events"
    );

    let (status, doc) = server
        .get_at(&format!("/api/v1/lab-records/{id}"), position.unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (doc["state"].as_str(), doc["title"].as_str(), doc["version"].as_u64()),
        (Some("BOOTED"), Some("OSPF v2"), Some(4))
    );
    assert_eq!(doc["cml_created_at"], "2026-01-01T10:00:00Z");
    let history = doc["operation_history"].as_array().unwrap();
    let types: Vec<&str> = history.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "lab_record.discovered",
            "lab_record.state_changed",
            "lab_record.details_changed",
            "lab_record.state_changed"
        ]
    );
    assert_eq!(
        (history[1]["previous_state"].as_str(), history[1]["new_state"].as_str()),
        (Some("STOPPED"), Some("STARTED"))
    );
    assert_eq!(
        history[2]["changed_fields"]["title"],
        json!({"old": "OSPF", "new": "OSPF v2"})
    );
    assert_eq!(
        history[2]["changed_fields"].as_object().unwrap().len(),
        1,
        "only the title changed"
    );
    assert_eq!(
        history[0]["actor"], "user:test-admin",
        "the actor is the subject of the caller's token, as a user"
    );
    assert!(
        history
            .windows(2)
            .all(|w| w[0]["position"].as_u64() < w[1]["position"].as_u64()),
        "oldest first"
    );
    for entry in history {
        for key in [
            "position",
            "event_id",
            "event_type",
            "occurred_at",
            "actor",
            "previous_state",
            "new_state",
            "changed_fields",
        ] {
            assert!(entry.get(key).is_some(), "history entry has {key}");
        }
    }
}

#[tokio::test]
async fn lists_filter_by_worker_and_state_and_hide_removed_labs() {
    let server = TestServer::start().await;
    let path = "/api/v1/lab-records/observations";
    let mut last = 0;
    for (lab, state) in [("a", "STARTED"), ("b", "STOPPED"), ("c", "STARTED")] {
        last = server.post(path, &observation(lab, state, "t")).await.2.unwrap();
    }
    let other = json!({"worker_id": "00000000-0000-0000-0000-0000000000aa", "lab_id": "x", "state": "STARTED"});
    last = last.max(server.post(path, &other).await.2.unwrap());

    let (status, page) = server.get_at(&format!("/api/v1/workers/{WORKER}/labs"), last).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(
        page["items"][0].get("operation_history").is_none(),
        "lists answer summaries"
    );
    assert!(page["next_cursor"].is_null());

    let (_, started) = server
        .get(&format!("/api/v1/lab-records?worker_id={WORKER}&state=STARTED"))
        .await;
    let labs: Vec<&str> = started["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["lab_id"].as_str().unwrap())
        .collect();
    assert_eq!(labs.len(), 2);
    assert!(labs.contains(&"a") && labs.contains(&"c"));

    let (_, all) = server
        .get("/api/v1/lab-records?worker_id=&state=&include_history=true")
        .await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        4,
        "empty filters are no filters"
    );
    assert_eq!(all["items"][0]["operation_history"].as_array().unwrap().len(), 1);

    let (_, page1) = server.get(&format!("/api/v1/workers/{WORKER}/labs?limit=2")).await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = server
        .get(&format!("/api/v1/workers/{WORKER}/labs?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);

    let id = started["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, removed, position) = server
        .post(
            &format!("/api/v1/lab-records/{id}/remove"),
            &json!({"reason": "vanished_from_cml"}),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    let (_, after) = server
        .get_at(&format!("/api/v1/workers/{WORKER}/labs"), position.unwrap())
        .await;
    assert_eq!(after["items"].as_array().unwrap().len(), 2);
    let (_, with_removed) = server
        .get(&format!("/api/v1/workers/{WORKER}/labs?include_removed=true"))
        .await;
    assert_eq!(with_removed["items"].as_array().unwrap().len(), 3);
    let (_, doc) = server.get(&format!("/api/v1/lab-records/{id}")).await;
    assert_eq!(doc["removal_reason"], "vanished_from_cml");

    let (status, problem, _) = server
        .post(
            &format!("/api/v1/lab-records/{id}/remove"),
            &json!({"reason": "operator"}),
        )
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/rule-violated"))
    );
}

#[tokio::test]
async fn history_keeps_the_fifty_most_recent_operations() {
    let server = TestServer::start().await;
    let path = "/api/v1/lab-records/observations";
    let mut last = None;
    for i in 0..61 {
        let state = if i % 2 == 0 { "STARTED" } else { "STOPPED" };
        last = Some(server.post(path, &observation("busy", state, "t")).await);
    }
    let (_, outcome, position) = last.unwrap();
    assert_eq!(outcome["version"].as_u64(), Some(61));
    let id = outcome["id"].as_str().unwrap();
    let (_, doc) = server
        .get_at(&format!("/api/v1/lab-records/{id}"), position.unwrap())
        .await;
    let history = doc["operation_history"].as_array().unwrap();
    assert_eq!(history.len(), 50);
    assert_eq!(history.last().unwrap()["position"].as_u64(), position);
    assert_eq!(
        history[0]["event_type"], "lab_record.state_changed",
        "the discovery fell out"
    );
}

#[tokio::test]
async fn concurrent_observations_of_one_lab_are_serialised_not_lost() {
    let server = TestServer::start().await;
    server
        .post("/api/v1/lab-records/observations", &observation("hot", "STOPPED", "t"))
        .await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = server.client.clone();
        let url = server.url("/api/v1/lab-records/observations");
        let body = observation("hot", if i % 2 == 0 { "STARTED" } else { "STOPPED" }, "t");
        tasks.push(tokio::spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut changed = 0;
    let mut versions = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert!(status == 200 || status == 409, "{status} {body}");
        if status == 200 && body["changed"] == true {
            changed += 1;
            versions.push(body["version"].as_u64().unwrap());
        }
    }
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), changed, "every change got its own version");
    let (_, events) = server.get("/health/ready").await;
    assert_eq!(
        events["head_position"].as_u64(),
        Some(1 + changed as u64),
        "the log holds exactly the acknowledged changes"
    );
}
