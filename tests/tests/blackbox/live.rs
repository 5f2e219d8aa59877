//! Live updates: Server-Sent Events per read-model change, filtered, resumable.

use lablet_tests::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads SSE messages from `response` until `count` changes arrived; answers (id, data) pairs.
async fn changes(response: &mut reqwest::Response, count: usize) -> Vec<(u64, Value)> {
    let mut text = String::new();
    let mut found = Vec::new();
    while found.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a change within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                message
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            if field("event:").as_deref() == Some("change") {
                let id = field("id:").unwrap().parse().unwrap();
                found.push((id, serde_json::from_str(&field("data:").unwrap()).unwrap()));
            }
        }
    }
    found
}

fn observation(lab: &str, state: &str) -> Value {
    json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": lab, "state": state})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_stream_filtered_after_their_projection_and_resume_from_last_event_id() {
    let server = TestServer::start().await;
    let mut live = server
        .client
        .get(server.url("/api/v1/stream?collection=lab_records"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");

    let (_, first, p1) = server
        .post("/api/v1/lab-records/observations", &observation("a", "STOPPED"))
        .await;
    server
        .post("/api/v1/work-orders", &json!({"kind": "report.render"}))
        .await;
    let (_, _, p2) = server
        .post("/api/v1/lab-records/observations", &observation("a", "STARTED"))
        .await;

    let seen = changes(&mut live, 2).await;
    assert_eq!(
        seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![p1.unwrap(), p2.unwrap()],
        "work orders filtered out"
    );
    let lab = first["id"].as_str().unwrap();
    assert_eq!(
        seen[0].1,
        json!({"collection": "lab_records", "id": lab, "position": p1, "event_type": "lab_record.discovered"})
    );
    assert_eq!(seen[1].1["event_type"], "lab_record.state_changed");
    // Sent after the projection applied it: the document already shows the change.
    let (_, doc) = server.get(&format!("/api/v1/lab-records/{lab}")).await;
    assert_eq!(doc["state"], "STARTED");
    drop(live);

    // Reconnecting after the first change replays the rest, nothing lost.
    let mut resumed = server
        .client
        .get(server.url(&format!("/api/v1/stream?id={lab}")))
        .header("last-event-id", p1.unwrap().to_string())
        .send()
        .await
        .unwrap();
    let replay = changes(&mut resumed, 1).await;
    assert_eq!(replay[0].0, p2.unwrap());

    let (status, problem) = server.get("/api/v1/stream?collection=labs").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (400, Some("collection"))
    );
    let response = server
        .client
        .get(server.url("/api/v1/stream"))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
