//! Lablet instances through the HTTP API.

use lablet_tests::server::instance_request as request;
use lablet_tests::TestServer;
use serde_json::{json, Value};

#[tokio::test]
async fn an_instance_lives_through_its_state_machine() {
    let server = TestServer::start().await;
    let definition = server.active_definition("ospf").await;
    let request = |reservation: &str, owner: &str| request(&definition, reservation, owner);
    let response = server
        .client
        .post(server.url("/api/v1/instances"))
        .json(&request("res-1", "alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/instances/{id}"));
    assert_eq!(created["version"], 1);

    let (status, problem, _) = server.post("/api/v1/instances", &request("res-1", "bob")).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/already-exists")),
        "a reservation is unique"
    );

    let transitions = format!("/api/v1/instances/{id}/transitions");
    let worker = "5a0c6a3e-9f53-4a8f-8b55-0a3f1c1f2e01";
    let (status, _, _) = server
        .post(
            &transitions,
            &json!({"to": "scheduled", "reason": "placed", "worker_id": worker}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem, _) = server.post(&transitions, &json!({"to": "grading"})).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/invalid-transition"))
    );
    assert!(problem["detail"].as_str().unwrap().contains("scheduled"));
    for to in ["instantiating", "running", "collecting", "grading"] {
        let (status, body, _) = server.post(&transitions, &json!({"to": to})).await;
        assert_eq!(status, 200, "{to}: {body}");
    }
    let score = json!({"total": 8.5, "max": 10, "passed": true, "breakdown": {"ospf": 5, "bgp": 3.5}});
    let (status, _, _) = server.post(&format!("/api/v1/instances/{id}/score"), &score).await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .post(
            &format!("/api/v1/instances/{id}/timeslot"),
            &json!({"timeslot_end": "2030-12-01T11:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem, _) = server
        .post(
            &format!("/api/v1/instances/{id}/timeslot"),
            &json!({"timeslot_end": "2030-12-01T10:30:00Z"}),
        )
        .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (409, Some("/problems/rule-violated")),
        "no shortening"
    );
    let (status, _, position) = server
        .post(&transitions, &json!({"to": "terminated", "reason": "done"}))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server.post(&transitions, &json!({"to": "stopping"})).await;
    assert_eq!(status, 409, "terminated is final");

    let (_, doc) = server
        .get_at(&format!("/api/v1/instances/{id}"), position.unwrap())
        .await;
    assert_eq!(doc["state"], "terminated");
    assert_eq!(doc["state_reason"], "done");
    assert_eq!(doc["worker_id"], worker);
    assert_eq!(doc["score"]["total"], 8.5);
    assert_eq!(doc["timeslot_end"], "2030-12-01T11:00:00Z");
    assert!(doc["terminated_at"].is_string() && doc["started_at"].is_string());
    let history = doc["operation_history"].as_array().unwrap();
    assert_eq!(history.len(), 9);
    let last = history.last().unwrap();
    assert_eq!(
        (last["previous_state"].as_str(), last["new_state"].as_str()),
        (Some("grading"), Some("terminated"))
    );
}

#[tokio::test]
async fn instances_are_listed_by_state_owner_and_worker() {
    let server = TestServer::start().await;
    let definition = server.active_definition("ospf").await;
    let request = |reservation: &str, owner: &str| request(&definition, reservation, owner);
    let mut ids = Vec::new();
    for (reservation, owner) in [("r1", "alice"), ("r2", "alice"), ("r3", "bob")] {
        let (_, body, _) = server.post("/api/v1/instances", &request(reservation, owner)).await;
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let worker = "5a0c6a3e-9f53-4a8f-8b55-0a3f1c1f2e01";
    let (_, _, position) = server
        .post(
            &format!("/api/v1/instances/{}/transitions", ids[2]),
            &json!({"to": "scheduled", "worker_id": worker}),
        )
        .await;
    let (_, alice) = server
        .get_at("/api/v1/instances?owner_id=alice", position.unwrap())
        .await;
    assert_eq!(alice["items"].as_array().unwrap().len(), 2);
    let (_, pending) = server.get("/api/v1/instances?state=pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    let (_, on_worker) = server.get(&format!("/api/v1/instances?worker_id={worker}")).await;
    assert_eq!(on_worker["items"][0]["id"], ids[2]);
    let (status, problem) = server.get("/api/v1/instances?state=sleeping").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("state")));
}
