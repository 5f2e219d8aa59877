//! Lablet definitions through the API: created with a first version pending its sync, versions
//! only going forward, deprecated and archived, listed by name and status; bad input is a 422
//! naming the field and changes nothing; admins and managers write, users read.

use lablet_api::auth::Role;
use lablet_tests::server::{client_with_token, definition_request, error_fields, token};
use lablet_tests::TestServer;
use serde_json::{json, Value};

fn with_spec(mut body: Value, field: &str, value: Value) -> Value {
    body["spec"][field] = value;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_go_through_their_versions() {
    let server = TestServer::start().await;
    let (status, created, _) = server
        .post("/api/v1/definitions", &definition_request("ospf", "1.0.0"))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, again, _) = server
        .post("/api/v1/definitions", &definition_request("ospf", "2.0.0"))
        .await;
    assert_eq!(
        (status, again["type"].as_str()),
        (409, Some("/problems/already-exists")),
        "{again}"
    );

    let versions = format!("/api/v1/definitions/{id}/versions");
    let next = |version: &str| json!({"version": version, "spec": definition_request("ospf", version)["spec"]});
    let (status, _, _) = server.post(&versions, &next("1.1.0")).await;
    assert_eq!(status, 200);
    let (status, refused, _) = server.post(&versions, &next("1.0.5")).await;
    assert_eq!(status, 409, "versions only go forward: {refused}");

    let (status, _, _) = server
        .post(&format!("{versions}/1.0.0/deprecate"), &json!({"reason": "old exam"}))
        .await;
    assert_eq!(status, 200);
    let (status, _, position) = server.post(&format!("{versions}/1.0.0/archive"), &json!({})).await;
    assert_eq!(status, 200);
    let (_, definition) = server
        .get_at(&format!("/api/v1/definitions/{id}"), position.unwrap())
        .await;
    assert_eq!(definition["name"], "ospf");
    assert_eq!(definition["latest_version"], "1.1.0");
    assert_eq!(definition["active_version"], Value::Null, "nothing is synced yet");
    assert_eq!(definition["status"], "pending_sync");
    let listed: Vec<(&str, &str)> = definition["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_str().unwrap(), v["status"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("1.0.0", "archived"), ("1.1.0", "pending_sync")]);
    assert_eq!(definition["versions"][0]["deprecation_reason"], "old exam");
    assert_eq!(definition["versions"][1]["max_duration_minutes"], 60, "the default");

    let (_, _, position) = server
        .post("/api/v1/definitions", &definition_request("bgp", "0.1.0"))
        .await;
    let (_, by_name) = server.get_at("/api/v1/definitions?name=bgp", position.unwrap()).await;
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1);
    let (_, pending) = server.get("/api/v1/definitions?status=pending_sync").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 2);
    let (status, _) = server.get("/api/v1/definitions?status=sleeping").await;
    assert_eq!(status, 400);

    let user = client_with_token(&token(&server.settings, "ursula", &[Role::User]));
    let read = user
        .get(server.url(&format!("/api/v1/definitions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "users read definitions");
    let write = user
        .post(server.url("/api/v1/definitions"))
        .json(&definition_request("mine", "1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403, "users do not write them");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let good = definition_request("eigrp", "1.0.0");
    let duplicated_ports = json!([{"name": "ssh", "protocol": "tcp"}, {"name": "ssh", "protocol": "udp"}]);
    let cases = [
        (
            {
                let mut b = good.clone();
                b["version"] = json!("1.0");
                b
            },
            "version",
        ),
        (
            {
                let mut b = good.clone();
                b["name"] = json!("");
                b
            },
            "name",
        ),
        (
            with_spec(good.clone(), "topology_sha256", json!("ABC")),
            "spec.topology_sha256",
        ),
        (
            with_spec(good.clone(), "artifact_uri", json!("ftp://x/y")),
            "spec.artifact_uri",
        ),
        (
            with_spec(good.clone(), "max_duration_minutes", json!(0)),
            "spec.max_duration_minutes",
        ),
        (
            with_spec(good.clone(), "max_duration_minutes", json!(481)),
            "spec.max_duration_minutes",
        ),
        (
            with_spec(good.clone(), "warm_pool_depth", json!(11)),
            "spec.warm_pool_depth",
        ),
        (with_spec(good.clone(), "node_count", json!(0)), "spec.node_count"),
        (
            with_spec(good.clone(), "license_affinity", json!(["gold"])),
            "spec.license_affinity",
        ),
        (with_spec(good.clone(), "ports", duplicated_ports), "spec.ports"),
        (with_spec(good.clone(), "colour", json!("blue")), "spec"),
    ];
    let head = server.head_position().await;
    for (body, field) in cases {
        let (status, problem, _) = server.post("/api/v1/definitions", &body).await;
        assert_eq!(status, 422, "{field}: {problem}");
        let fields = error_fields(&problem);
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{field} not in {fields:?}: {problem}"
        );
    }
    assert_eq!(server.head_position().await, head, "nothing was written");
    let unknown = format!("/api/v1/definitions/{}/versions/1.0.0/archive", uuid::Uuid::now_v7());
    let (status, _, _) = server.post(&unknown, &json!({})).await;
    assert_eq!(status, 404);
    let (status, problem, _) = server
        .post(
            &format!(
                "/api/v1/definitions/{}/versions/not-a-version/archive",
                uuid::Uuid::now_v7()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_needs_an_active_version_for_no_longer_than_it_allows() {
    let server = TestServer::start().await;
    let definition = server.active_definition("ospf").await;
    let request = lablet_tests::server::instance_request(&definition, "r-1", "alice");
    let head = server.head_position().await;
    let refused = |mut body: Value, field: &str, value: Value| {
        body[field] = value;
        body
    };
    let cases = [
        (
            refused(request.clone(), "definition_id", json!(uuid::Uuid::now_v7())),
            "definition_id",
        ),
        (
            refused(request.clone(), "definition_version", json!("2.0.0")),
            "definition_version",
        ),
        (
            refused(request.clone(), "definition_version", json!("latest")),
            "definition_version",
        ),
        // 61 minutes, one more than the version allows.
        (
            refused(request.clone(), "timeslot_end", json!("2030-12-01T10:01:00Z")),
            "timeslot_end",
        ),
    ];
    for (body, field) in cases {
        let (status, problem, _) = server.post("/api/v1/instances", &body).await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert_eq!(error_fields(&problem), [field], "{problem}");
    }
    assert_eq!(server.head_position().await, head, "nothing was written");
    let (status, created, _) = server.post("/api/v1/instances", &request).await;
    assert_eq!(status, 201, "{created}");

    // An inactive version takes none either, until it is back.
    let version = format!("/api/v1/definitions/{}/versions/1.0.0", definition.id);
    assert_eq!(server.post(&format!("{version}/deactivate"), &json!({})).await.0, 200);
    let paused = lablet_tests::server::instance_request(&definition, "r-paused", "alice");
    let (status, problem, _) = server.post("/api/v1/instances", &paused).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("inactive"), "{problem}");
    assert_eq!(server.post(&format!("{version}/reactivate"), &json!({})).await.0, 200);
    let (status, created, _) = server.post("/api/v1/instances", &paused).await;
    assert_eq!(status, 201, "{created}");

    // A deprecated version takes no new instances.
    let deprecate = format!("/api/v1/definitions/{}/versions/1.0.0/deprecate", definition.id);
    assert_eq!(server.post(&deprecate, &json!({})).await.0, 200);
    let another = lablet_tests::server::instance_request(&definition, "r-2", "alice");
    let (status, problem, _) = server.post("/api/v1/instances", &another).await;
    assert_eq!(status, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("deprecated"), "{problem}");
    server.stop().await;
}
