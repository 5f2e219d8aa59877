//! The CloudEvents inbox: binary, structured and batch mode; bad attributes; duplicates; and
//! the assessment events moving lablet instances.

use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

async fn instance_in_collecting(server: &TestServer, reservation: &str) -> String {
    let definition = server.active_definition(&format!("lab-for-{reservation}")).await;
    let (_, created, _) = server
        .post(
            "/api/v1/instances",
            &lablet_tests::server::instance_request(&definition, reservation, "alice"),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    for to in ["scheduled", "instantiating", "running", "collecting"] {
        let (status, _, _) = server
            .post(&format!("/api/v1/instances/{id}/transitions"), &json!({"to": to}))
            .await;
        assert_eq!(status, 200);
    }
    id
}

fn structured(id: &str, event_type: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/assessment", "type": event_type, "data": data})
}

/// Polls the inbox record of `id` until it is concluded.
async fn concluded(server: &TestServer, id: &str) -> Value {
    for _ in 0..100 {
        let (status, record) = server.get(&format!("/api/v1/events/inbox/%2Fassessment/{id}")).await;
        assert_eq!(status, 200, "{record}");
        if record["status"] != "received" {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("inbox message {id} was never handled");
}

async fn instance(server: &TestServer, id: &str) -> Value {
    let head = server.head_position().await;
    server.get_at(&format!("/api/v1/instances/{id}"), head).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessment_events_move_instances_and_duplicates_get_the_first_outcome() {
    let server = TestServer::start().await;
    let id = instance_in_collecting(&server, "r-1").await;

    // Binary mode: attributes in headers, data in the body.
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "c-1")
        .header("ce-source", "/assessment")
        .header("ce-type", "io.lablet.assessment.collection.completed")
        .header("content-type", "application/json")
        .body(json!({"instance_id": id, "collection_id": "col-9", "artifacts_uri": "s3://bucket/col-9"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(
        (receipt["status"].as_str(), receipt["duplicate"].as_bool()),
        (Some("received"), Some(false))
    );
    let record = concluded(&server, "c-1").await;
    assert_eq!(record["status"], "handled", "{record}");
    let doc = instance(&server, &id).await;
    assert_eq!(doc["state"], "grading");
    assert_eq!(doc["state_reason"], "collection col-9 completed: s3://bucket/col-9");
    let last = doc["operation_history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "integrator:/assessment");

    // Structured mode: the grading result records the score and stops the instance.
    let grading = structured(
        "g-1",
        "io.lablet.assessment.grading.completed",
        json!({"instance_id": id, "score": {"total": 7, "max": 10, "breakdown": {"ospf": 7}}, "passed": true}),
    );
    let (status, _) = server
        .post_raw("/api/v1/events", "application/cloudevents+json", &grading.to_string())
        .await;
    assert_eq!(status, 202);
    assert_eq!(concluded(&server, "g-1").await["status"], "handled");
    let doc = instance(&server, &id).await;
    assert_eq!(
        (doc["state"].as_str(), doc["score"]["total"].as_f64()),
        (Some("stopping"), Some(7.0))
    );

    // The same event again: nothing recorded, the first outcome answered.
    let head = server.head_position().await;
    let (status, again) = server
        .post_raw("/api/v1/events", "application/cloudevents+json", &grading.to_string())
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        (again["duplicate"].as_bool(), again["status"].as_str()),
        (Some(true), Some("handled"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.head_position().await, head, "a duplicate changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_transitions_are_rejected_and_unknown_types_ignored() {
    let server = TestServer::start().await;
    let id = instance_in_collecting(&server, "r-2").await;
    let batch = json!([
        structured(
            "g-early",
            "io.lablet.assessment.grading.completed",
            json!({"instance_id": id, "score": {"total": 1, "max": 10}, "passed": false})
        ),
        structured("x-1", "io.lablet.something.else", json!({})),
        structured(
            "bad-data",
            "io.lablet.assessment.collection.completed",
            json!({"collection_id": "c"})
        ),
    ]);
    let (status, answer) = server
        .post_raw(
            "/api/v1/events",
            "application/cloudevents-batch+json",
            &batch.to_string(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["results"].as_array().unwrap().len(), 3);

    let early = concluded(&server, "g-early").await;
    assert_eq!(
        early["status"], "rejected",
        "a score cannot be recorded while collecting: {early}"
    );
    assert_eq!(early["detail"], "lablet_instance is collecting, not grading");
    assert_eq!(concluded(&server, "x-1").await["status"], "ignored");
    let bad = concluded(&server, "bad-data").await;
    assert_eq!(bad["status"], "rejected");
    assert!(bad["detail"].as_str().unwrap().contains("instance_id"), "{bad}");
    assert_eq!(instance(&server, &id).await["state"], "collecting", "nothing moved");
}

#[tokio::test]
async fn invalid_cloudevents_are_400_naming_the_attribute_and_record_nothing() {
    let server = TestServer::start().await;
    let good = structured("ok", "t", json!({}));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "application/cloudevents+json",
            json!({"specversion": "0.3", "id": "1", "source": "/s", "type": "t"}).to_string(),
            "specversion",
        ),
        (
            "application/cloudevents+json",
            json!({"id": "1", "source": "/s", "type": "t"}).to_string(),
            "specversion",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "source": "/s", "type": "t"}).to_string(),
            "id",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "1", "type": "t"}).to_string(),
            "source",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "1", "source": "/s", "type": ""}).to_string(),
            "type",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": 5, "source": "/s", "type": "t"}).to_string(),
            "id",
        ),
        ("application/cloudevents+json", "{not json".to_string(), "body"),
        (
            "application/cloudevents-batch+json",
            json!([good, {"specversion": "1.0", "id": "2", "source": "/s"}]).to_string(),
            "[1].type",
        ),
        (
            "application/cloudevents-batch+json",
            json!({"not": "a list"}).to_string(),
            "body",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "x".repeat(100 * 1024), "source": "/s", "type": "t"}).to_string(),
            "id",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t\u{0}x"}).to_string(),
            "type",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "1", "source": "/s".repeat(600), "type": "t"}).to_string(),
            "source",
        ),
        (
            "application/cloudevents+json",
            json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": "a\nb"}).to_string(),
            "subject",
        ),
    ];
    for (content_type, body, field) in cases {
        let (status, problem) = server.post_raw("/api/v1/events", content_type, &body).await;
        assert_eq!(
            (status, problem["errors"][0]["field"].as_str()),
            (400, Some(field)),
            "{body}: {problem}"
        );
    }
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-type", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "ce-source");
    let (status, _) = server.post_raw("/api/v1/events", "text/plain", "hello").await;
    assert_eq!(status, 415);
    let huge = structured("big", "t", json!({"blob": "x".repeat(2 * 1024 * 1024)}));
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .header("content-type", "application/cloudevents+json")
        .body(huge.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "every answer is a problem"
    );
    assert_eq!(
        server.head_position().await,
        0,
        "nothing was recorded, not even the valid half of a batch"
    );
    let (status, _) = server.get("/api/v1/events/inbox/%2Fs/unknown").await;
    assert_eq!(status, 404);
}
