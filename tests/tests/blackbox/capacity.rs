//! A worker's declared capacity, as an admin corrects it: the workers read model follows
//! (declared, allocated, available, free ports), bad input is a 422 naming the field and
//! changes nothing, and only an admin may do it.

use lablet_api::auth::Role;
use lablet_tests::server::{client_with_token, error_fields, token};
use lablet_tests::TestServer;
use serde_json::json;

fn capacity(cpu_cores: i64) -> serde_json::Value {
    json!({"declared_capacity": {"cpu_cores": cpu_cores, "memory_gb": 64, "storage_gb": 200, "max_nodes": 40}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_declares_a_workers_capacity_and_the_read_model_follows() {
    let server = TestServer::start().await;
    let body = json!({"name": "w-capacity", "region": "eu-west-1",
        "capacity": {"cpu_cores": 8, "memory_gb": 32, "storage_gb": 100, "max_nodes": 20}});
    let (status, created, _) = server.post("/api/v1/workers", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/workers/{id}/capacity");

    let (status, outcome, position) = server.post(&path, &capacity(24)).await;
    assert_eq!(status, 200, "{outcome}");
    let (_, worker) = server.get_at(&format!("/api/v1/workers/{id}"), position.unwrap()).await;
    assert_eq!(worker["declared_capacity"]["cpu_cores"], 24);
    assert_eq!(worker["available_capacity"]["cpu_cores"], 24);
    assert_eq!(worker["allocated_capacity"]["cpu_cores"], 0);
    assert_eq!(worker["free_ports"], 8000);

    let (status, problem, _) = server.post(&path, &capacity(-1)).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        error_fields(&problem).iter().any(|f| f.contains("cpu_cores")),
        "{problem}"
    );
    let (status, problem, _) = server
        .post(&path, &json!({"declared_capacity": {"cpu_cores": 1}}))
        .await;
    assert_eq!(status, 422, "a partial capacity is refused: {problem}");
    let (_, worker) = server.get(&format!("/api/v1/workers/{id}")).await;
    assert_eq!(
        worker["declared_capacity"]["cpu_cores"], 24,
        "refused input changed nothing"
    );

    let manager = client_with_token(&token(&server.settings, "morgan", &[Role::Manager]));
    let answer = manager.post(server.url(&path)).json(&capacity(2)).send().await.unwrap();
    assert_eq!(answer.status(), 403, "only an admin declares capacity");
    let unknown = format!("/api/v1/workers/{}/capacity", uuid::Uuid::now_v7());
    let (status, _, _) = server.post(&unknown, &capacity(2)).await;
    assert_eq!(status, 404);
    server.stop().await;
}
