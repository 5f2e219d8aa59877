//! Worker templates: seeded at start from `LABLET_WORKER_TEMPLATES` (created if missing, never
//! overwritten, also when two replicas start together), read by everyone signed in, changed,
//! disabled and enabled by admins; a bad seed file stops the start naming the entry.

use lablet_api::auth::Role;
use lablet_tests::server::{client_with_token, error_fields, template_spec, token};
use lablet_tests::TestServer;
use serde_json::{json, Value};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/worker-templates.yaml");

async fn templates(server: &TestServer, position: u64) -> Vec<Value> {
    let (_, page) = server.get_at("/api/v1/worker-templates", position).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_seeded_once_and_admins_change_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.worker_templates = Some(EXAMPLE.into());
    let server = TestServer::start_in(settings.clone()).await;
    let head = server.head_position().await;
    let seeded = templates(&server, head).await;
    let names: Vec<&str> = seeded.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{seeded:?}");
    assert!(names.contains(&"metal-large") && names.contains(&"personal-small"));
    let large = seeded.iter().find(|t| t["name"] == "metal-large").unwrap();
    assert_eq!(large["declared_capacity"]["cpu_cores"], 48);
    assert_eq!(large["port_range"]["first"], 2000);
    assert_eq!(large["enabled"], true);
    let id = large["id"].as_str().unwrap().to_owned();

    // An admin changes it; a restart seeds nothing over the change.
    let (status, _, _) = server
        .post(&format!("/api/v1/worker-templates/{id}/change"), &template_spec(5.25))
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .post(&format!("/api/v1/worker-templates/{id}/disable"), &json!({}))
        .await;
    assert_eq!(status, 200);
    server.stop().await;
    let server = TestServer::start_in(settings).await;
    let head = server.head_position().await;
    let (_, large) = server.get_at(&format!("/api/v1/worker-templates/{id}"), head).await;
    assert_eq!(large["hourly_cost"], 5.25, "never overwritten by the seed file");
    assert_eq!(large["enabled"], false);
    let (_, licensed) = server
        .get_at("/api/v1/worker-templates?license_type=personal", head)
        .await;
    assert_eq!(licensed["items"].as_array().unwrap().len(), 1);

    let manager = client_with_token(&token(&server.settings, "mona", &[Role::Manager]));
    let read = manager
        .get(server.url(&format!("/api/v1/worker-templates/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let change = manager
        .post(server.url(&format!("/api/v1/worker-templates/{id}/enable")))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 403, "only admins change templates");

    let (status, problem, _) = server
        .post(&format!("/api/v1/worker-templates/{id}/change"), &template_spec(-1.0))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(error_fields(&problem).contains(&"hourly_cost"), "{problem}");
    let (status, _, _) = server
        .post(
            "/api/v1/worker-templates",
            &json!({"name": "metal-large", "spec": template_spec(1.0)}),
        )
        .await;
    assert_eq!(status, 409, "a name is one template");
    server.stop().await;
}

#[test]
fn a_bad_seed_file_stops_the_start_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates.yaml");
    std::fs::write(&file, "templates:\n  - name: broken\n    instance_type: x\n").unwrap();
    let output = std::process::Command::new(LABLET)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("LABLET_DATA_DIR", dir.path())
        .env("LABLET_WORKER_TEMPLATES", &file)
        .env("LABLET_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("LABLET_WORKER_TEMPLATES") && said.contains("templates[0]"),
        "{said}"
    );
}
