//! Bad input gets a problem naming the field and the reason, and writes nothing.

use lablet_tests::TestServer;
use serde_json::{json, Value};

const WORKER: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

fn lab() -> Value {
    json!({"worker_id": WORKER, "lab_id": "lab-1", "state": "STARTED", "node_count": 2})
}

fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

fn without(mut base: Value, field: &str) -> Value {
    base.as_object_mut().unwrap().remove(field);
    base
}

fn instance() -> Value {
    json!({"definition_id": "0b4f3b7e-3c3e-4d59-9a2a-2f0d7f1d4a11", "definition_version": "1.0.0",
           "owner_id": "alice", "reservation_id": "r-1",
           "timeslot_start": "2026-12-01T09:00:00Z", "timeslot_end": "2026-12-01T10:00:00Z"})
}

#[tokio::test]
async fn every_bad_body_is_a_problem_naming_its_field_and_changes_nothing() {
    let server = TestServer::start().await;
    let observe = "/api/v1/lab-records/observations";
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (observe, without(lab(), "lab_id"), 422, "lab_id"),
        (observe, without(lab(), "state"), 422, "state"),
        (observe, with(lab(), "lab_id", json!("")), 422, "lab_id"),
        (observe, with(lab(), "lab_id", json!("   ")), 422, "lab_id"),
        (observe, with(lab(), "worker_id", json!("")), 422, "worker_id"),
        (observe, with(lab(), "worker_id", json!("not-a-uuid")), 422, "worker_id"),
        (
            observe,
            with(lab(), "worker_id", json!("00000000-0000-0000-0000-000000000000")),
            422,
            "worker_id",
        ),
        (observe, with(lab(), "state", json!("RUNNING")), 422, "state"),
        (observe, with(lab(), "node_count", json!(-1)), 422, "node_count"),
        (observe, with(lab(), "link_count", json!("three")), 422, "link_count"),
        (observe, with(lab(), "groups", json!("students")), 422, "groups"),
        (
            observe,
            with(lab(), "cml_created_at", json!("yesterday")),
            422,
            "cml_created_at",
        ),
        (observe, with(lab(), "surprise", json!(1)), 422, "surprise"),
        (
            "/api/v1/instances",
            with(instance(), "timeslot_end", json!("2026-12-01T08:00:00Z")),
            422,
            "timeslot_end",
        ),
        (
            "/api/v1/instances",
            with(instance(), "timeslot_end", json!("2026-12-01T09:00:00Z")),
            422,
            "timeslot_end",
        ),
        (
            "/api/v1/instances",
            with(instance(), "owner_id", json!("")),
            422,
            "owner_id",
        ),
        (
            "/api/v1/instances",
            with(instance(), "reservation_id", json!(" ")),
            422,
            "reservation_id",
        ),
        (
            "/api/v1/instances",
            with(instance(), "definition_id", json!("")),
            422,
            "definition_id",
        ),
        (
            "/api/v1/instances",
            without(instance(), "timeslot_start"),
            422,
            "timeslot_start",
        ),
        ("/api/v1/work-orders", json!({"kind": ""}), 422, "kind"),
        (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "max_attempts": 0}),
            422,
            "max_attempts",
        ),
        (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "priority": "high"}),
            422,
            "priority",
        ),
        (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "resources": {"cpu_cores": -2}}),
            422,
            "resources.cpu_cores",
        ),
        (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "resources": {"gpus": 1}}),
            422,
            "resources.gpus",
        ),
        ("/api/v1/work-orders", json!([1, 2]), 422, "body"),
        // serde reads a sequence as a struct's fields in order; Lablet does not.
        (
            "/api/v1/work-orders",
            json!({"kind": "report.render", "resources": [1, 2]}),
            422,
            "resources",
        ),
        (
            "/api/v1/workers",
            json!({"name": "w", "region": "r", "capacity": [1, 2, 3, 4]}),
            422,
            "capacity",
        ),
        // NUL characters, in ids and in free text.
        ("/api/v1/work-orders", json!({"kind": "lab\u{0}start"}), 422, "kind"),
        (observe, with(lab(), "title", json!("a\u{0}b")), 422, "title"),
        (observe, with(lab(), "lab_id", json!("lab\u{0}")), 422, "lab_id"),
        (
            "/api/v1/instances",
            with(instance(), "owner_id", json!("al\u{0}ice")),
            422,
            "owner_id",
        ),
        // A non-string where an enum's name belongs.
        (observe, with(lab(), "state", json!(5)), 422, "state"),
        (observe, with(lab(), "state", json!({"name": "STARTED"})), 422, "state"),
        // A blank endpoint is not "no endpoint".
        (
            "/api/v1/workers",
            json!({"name": "w", "region": "r", "endpoint": "",
                "capacity": {"cpu_cores": 1, "memory_gb": 1, "storage_gb": 1, "max_nodes": 1}}),
            422,
            "endpoint",
        ),
    ];
    for (path, body, status, field) in cases {
        let (got, problem, position) = server.post(path, &body).await;
        assert_eq!(got, status, "{path} {body}: {problem}");
        assert_eq!(problem["status"].as_u64(), Some(status as u64));
        assert!(problem["type"].as_str().unwrap().starts_with("/problems/"));
        assert!(!problem["detail"].as_str().unwrap().is_empty());
        let fields = lablet_tests::server::error_fields(&problem);
        assert!(
            fields.contains(&field),
            "{path} {body}: expected field {field}, got {problem}"
        );
        assert_eq!(position, None, "a refused command has no position");
    }
    assert_eq!(server.head_position().await, 0, "nothing was written");
}

#[tokio::test]
async fn unreadable_requests_are_400_or_415() {
    let server = TestServer::start().await;
    let observe = "/api/v1/lab-records/observations";
    let (status, problem) = server.post_raw(observe, "application/json", "{\"worker_id\": ").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("body")));
    let (status, _) = server.post_raw(observe, "application/json", "").await;
    assert_eq!(status, 400);
    let (status, _) = server.post_raw(observe, "application/json", "{} {}").await;
    assert_eq!(status, 400);
    let (status, _) = server.post_raw(observe, "text/plain", "{}").await;
    assert_eq!(status, 415);

    let (status, problem) = server.get("/api/v1/lab-records/not-a-uuid").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("id")));
    let (status, problem) = server.get("/api/v1/lab-records?colour=red").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("colour")));
    let (status, problem) = server.get("/api/v1/lab-records?state=RUNNING").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("state")));
    let (status, problem) = server.get("/api/v1/lab-records?limit=0").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("limit")));
    let (status, problem) = server.get("/api/v1/lab-records?limit=many").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("limit")));
    let (status, problem) = server.get("/api/v1/workers/nope/labs").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("worker_id"))
    );
    let response = server
        .client
        .get(server.url("/api/v1/lab-records"))
        .header("lablet-min-position", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    let (status, problem, _) = server
        .post("/api/v1/instances/not-an-id/transitions", &json!({"to": "scheduled"}))
        .await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (400, Some("id")));
    assert_eq!(server.head_position().await, 0);
}

#[tokio::test]
async fn unknown_things_are_404_and_rule_breaks_409() {
    let server = TestServer::start().await;
    let missing = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
    for path in [
        format!("/api/v1/lab-records/{missing}"),
        format!("/api/v1/instances/{missing}"),
        format!("/api/v1/work-orders/{missing}"),
        "/api/v1/nothing-here".to_string(),
    ] {
        let (status, problem) = server.get(&path).await;
        assert_eq!(
            (status, problem["type"].as_str()),
            (404, Some("/problems/not-found")),
            "{path}"
        );
    }
    let (status, _, _) = server
        .post(
            &format!("/api/v1/instances/{missing}/transitions"),
            &json!({"to": "scheduled"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = server
        .post(&format!("/api/v1/work-orders/{missing}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = server
        .post(
            &format!("/api/v1/lab-records/{missing}/remove"),
            &json!({"reason": "operator"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.post_raw("/health/live", "application/json", "{}").await;
    assert_eq!(status, 405);

    let definition = server.active_definition("ospf").await;
    let request = lablet_tests::server::instance_request(&definition, "r-rules", "alice");
    let (_, created, _) = server.post("/api/v1/instances", &request).await;
    let id = created["id"].as_str().unwrap();
    let head = server.head_position().await;
    let (status, problem, _) = server
        .post(
            &format!("/api/v1/instances/{id}/transitions"),
            &json!({"to": "running", "worker_id": WORKER}),
        )
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("worker_id"))
    );
    let (status, _, _) = server
        .post(
            &format!("/api/v1/instances/{id}/transitions"),
            &json!({"to": "running"}),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _, _) = server
        .post(
            &format!("/api/v1/instances/{id}/score"),
            &json!({"total": 11, "max": 10, "passed": true}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(server.head_position().await, head, "refused commands wrote nothing");
}
