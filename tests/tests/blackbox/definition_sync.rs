//! The artifact sync of lablet definitions, with real artifacts: served over HTTP, read from a
//! file, and (when `LABLET_TEST_S3_ENDPOINT` names an S3-compatible server, as `.ci/run` starts
//! with moto) from S3. A version goes active only when its artifact's SHA-256 and node count
//! match; an unreadable or mismatching one stays pending with the reason; the next version
//! going active deprecates the one before.

use axum::routing::get;
use axum::Router;
use lablet_infrastructure::artifacts::sha256_hex;
use lablet_tests::process::{free_port, start_server};
use lablet_tests::server::{admin_client, definition_request, get_json, wait_ready};
use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const TOPOLOGY: &str = "lab:\n  title: OSPF area 0\nnodes:\n  - id: n0\n    label: r1\n  - id: n1\n    label: r2\n  - id: n2\n    label: sw\nlinks: []\n";

/// Serves `TOPOLOGY` at `/labs/ospf.yaml` on a free port; answers the base URL.
async fn artifact_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/labs/ospf.yaml", get(|| async { TOPOLOGY }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn version_body(version: &str, uri: &str, sha: &str) -> Value {
    let mut body = definition_request("ospf", version);
    body["spec"]["artifact_uri"] = json!(uri);
    body["spec"]["topology_sha256"] = json!(sha);
    body
}

/// Polls `GET path` until `done` holds, for at most 20 seconds.
async fn until(client: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let document = get_json(client, url).await;
        if done(&document) {
            return document;
        }
        assert!(Instant::now() < deadline, "never got there: {document}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn version<'a>(definition: &'a Value, version: &str) -> &'a Value {
    definition["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["version"] == version))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_go_active_only_when_their_artifact_matches() {
    let base = artifact_server().await;
    let sha = sha256_hex(TOPOLOGY.as_bytes());
    let server = TestServer::start_with(|s| s.definition_sync_interval = Duration::from_millis(100)).await;
    let client = server.client.clone();
    let (status, created, _) = server
        .post(
            "/api/v1/definitions",
            &version_body("1.0.0", &format!("{base}/labs/ospf.yaml"), &sha),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let url = server.url(&format!("/api/v1/definitions/{}", created["id"].as_str().unwrap()));
    let definition = until(&client, &url, |d| d["active_version"] == "1.0.0").await;
    assert_eq!(definition["status"], "active");

    let add = |version: &str, uri: String, sha: &str| {
        let mut body = version_body(version, &uri, sha);
        body.as_object_mut().unwrap().remove("name");
        body
    };
    let versions = format!("{}/versions", url.trim_start_matches(&server.url("")));
    let missing = add("1.1.0", format!("{base}/labs/missing.yaml"), &sha);
    assert_eq!(server.post(&versions, &missing).await.0, 200);
    let definition = until(&client, &url, |d| !version(d, "1.1.0")["sync_error"].is_null()).await;
    let failed = version(&definition, "1.1.0");
    assert_eq!(failed["status"], "pending_sync");
    assert!(
        failed["sync_error"].as_str().unwrap().contains("could not be read"),
        "{failed}"
    );

    let wrong = add("1.2.0", format!("{base}/labs/ospf.yaml"), &"0".repeat(64));
    assert_eq!(server.post(&versions, &wrong).await.0, 200);
    let definition = until(&client, &url, |d| !version(d, "1.2.0")["sync_error"].is_null()).await;
    assert!(version(&definition, "1.2.0")["sync_error"]
        .as_str()
        .unwrap()
        .contains("SHA-256"));
    assert_eq!(definition["active_version"], "1.0.0", "a mismatch changes nothing else");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ospf.yaml");
    std::fs::write(&file, TOPOLOGY).unwrap();
    let local = add("1.3.0", format!("file://{}", file.display()), &sha);
    assert_eq!(server.post(&versions, &local).await.0, 200);
    let definition = until(&client, &url, |d| d["active_version"] == "1.3.0").await;
    assert_eq!(version(&definition, "1.0.0")["status"], "deprecated");
    assert_eq!(
        version(&definition, "1.0.0")["deprecation_reason"],
        "superseded by 1.3.0"
    );
    assert_eq!(version(&definition, "1.1.0")["status"], "pending_sync");

    // The failures are recorded once, not once per pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, history) = server
        .get(&format!(
            "/api/v1/audit/streams/lablet_definition-{}?limit=100",
            created["id"].as_str().unwrap()
        ))
        .await;
    let failures = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "lablet_definition.version_sync_failed")
        .count();
    assert_eq!(failures, 2, "{history}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_artifact_is_in_s3_goes_active() {
    let Some(endpoint) = std::env::var("LABLET_TEST_S3_ENDPOINT").ok().filter(|e| !e.is_empty()) else {
        lablet_tests::report_skipped(
            "a_version_whose_artifact_is_in_s3_goes_active",
            "no S3 endpoint; set LABLET_TEST_S3_ENDPOINT (e.g. a moto_server) to run it",
        );
        return;
    };
    let bucket = format!("lablet-{}", uuid::Uuid::now_v7().simple());
    let http = reqwest::Client::new();
    let made = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 endpoint answers");
    assert!(made.status().is_success(), "bucket: {}", made.status());
    let put = http
        .put(format!("{endpoint}/{bucket}/labs/ospf.yaml"))
        .body(TOPOLOGY)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "object: {}", put.status());

    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("LABLET_DEFINITION_SYNC_INTERVAL_MS", "100"),
    ];
    let mut child = start_server(LABLET, data_dir.path(), port, &env);
    let base = format!("http://127.0.0.1:{port}");
    let client = admin_client(data_dir.path());
    wait_ready(&client, &format!("{base}/health/ready")).await;
    let body = version_body(
        "1.0.0",
        &format!("s3://{bucket}/labs/ospf.yaml"),
        &sha256_hex(TOPOLOGY.as_bytes()),
    );
    let created: Value = client
        .post(format!("{base}/api/v1/definitions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/api/v1/definitions/{}", created["id"].as_str().expect("an id"));
    let definition = until(&client, &url, |d| {
        d["active_version"] == "1.0.0" || !version(d, "1.0.0")["sync_error"].is_null()
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(definition["active_version"], "1.0.0", "{definition}");
}
