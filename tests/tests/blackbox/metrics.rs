//! `GET /metrics`: counters, histograms and gauges in the Prometheus text format.

use lablet_tests::{sample, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_commands_and_http_requests_and_report_lag() {
    let server = TestServer::start().await;
    for state in ["STARTED", "STOPPED", "STARTED"] {
        let body = json!({"worker_id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "lab_id": "m1", "state": state});
        let (status, _, _) = server.post("/api/v1/lab-records/observations", &body).await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = server.post("/api/v1/work-orders", &json!({"kind": ""})).await;
    assert_eq!(status, 422);
    let (status, _) = server
        .get("/api/v1/lab-records/6f9619ff-8b86-d011-b42d-00c04fc964aa")
        .await;
    assert_eq!(status, 404);
    let head = server.head_position().await;
    server.get_at("/api/v1/lab-records", head).await;

    let response = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let observe = "request=\"lab_record.observe\",kind=\"command\",outcome=\"ok\"";
    assert_eq!(sample(&text, &format!("lablet_requests_total{{{observe}}}")), 3.0);
    assert_eq!(
        sample(&text, &format!("lablet_request_duration_seconds_count{{{observe}}}")),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("lablet_request_duration_seconds_bucket{{{observe},le=\"+Inf\"}}")
        ),
        3.0
    );
    assert!(text.contains("outcome=\"not_found\""), "{text}");
    assert_eq!(
        sample(
            &text,
            "lablet_http_requests_total{route=\"/api/v1/lab-records/observations\",method=\"POST\",status=\"200\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "lablet_http_requests_total{route=\"/api/v1/work-orders\",method=\"POST\",status=\"422\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "lablet_http_requests_total{route=\"/api/v1/lab-records/{id}\",method=\"GET\",status=\"404\"}"
        ),
        1.0,
        "routes are counted by pattern, not by path"
    );
    assert_eq!(sample(&text, "lablet_events_head_position "), head as f64);
    let appended: f64 = text
        .lines()
        .filter(|line| line.starts_with("lablet_events_appended_total{"))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(
        appended, head as f64,
        "every event in the log was appended by this process"
    );
    assert_eq!(
        sample(
            &text,
            "lablet_events_appended_total{event_type=\"lab_record.discovered\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "lablet_projection_lag_events{projection=\"lab_records\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "lablet_projection_lag_seconds{projection=\"lab_records\"}"),
        0.0,
        "nothing waits"
    );

    // A projection stuck behind an event it cannot read lags in events and, as time passes,
    // in seconds; the others do not.
    server.stall_lab_records().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, _, position) = server
        .post("/api/v1/work-orders", &json!({"kind": "report.render"}))
        .await;
    let (status, _) = server.get_at("/api/v1/work-orders", position.unwrap()).await;
    assert_eq!(status, 200, "work orders go on past the event they do not read");
    let text = server.metrics().await;
    assert!(sample(&text, "lablet_projection_lag_events{projection=\"lab_records\"}") >= 1.0);
    let waited = sample(&text, "lablet_projection_lag_seconds{projection=\"lab_records\"}");
    assert!((1.0..60.0).contains(&waited), "waited {waited} s");
    assert_eq!(
        sample(&text, "lablet_projection_lag_seconds{projection=\"work_orders\"}"),
        0.0
    );
    server.stop().await;
}
