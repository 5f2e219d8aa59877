//! The lifecycle across a `kill -9`: the server process dies while its executor holds the
//! lease of a lab step on a simulated worker; after the restart the lease runs out, the step is
//! run again, and the instance goes on to the end with exactly one lab and no step done twice.

use chrono::{Duration as Minutes, Utc};
use lablet_domain::work_order::unique_order_id;
use lablet_tests::fleet::{start_simulator, SIMULATOR_PASSWORD};
use lablet_tests::process::{free_port, start_server};
use lablet_tests::server::{activate_definition, admin_client, get_json, wait_ready};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LABLET: &str = env!("CARGO_BIN_EXE_lablet-under-test");

/// Short leases and quick jobs, so a dead executor's lease runs out within seconds.
const ENV: &[(&str, &str)] = &[
    ("LABLET_EXECUTOR_LEASE_SECONDS", "3"),
    ("LABLET_WORK_ORDER_TICK_MS", "200"),
    ("LABLET_SCHEDULER_INTERVAL_MS", "200"),
    ("LABLET_LIFECYCLE_INTERVAL_MS", "200"),
    ("LABLET_DEFINITION_SYNC_INTERVAL_MS", "200"),
    ("LABLET_MONITORING_INTERVAL", "1s"),
];

async fn until(client: &reqwest::Client, url: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let document = get_json(client, url).await;
        if done(&document) {
            return document;
        }
        assert!(Instant::now() < deadline, "{url} never got there: {document}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let answer = client.post(url).json(&body).send().await.expect("the server answers");
    assert!(answer.status().is_success(), "{url}: {}", answer.status());
    answer.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_mid_step_resumes_and_nothing_is_done_twice() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let simulator = start_simulator().await;
    let mut server = start_server(LABLET, dir.path(), port, ENV);
    wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    let client = admin_client(dir.path());

    let worker = post(
        &client,
        &format!("{base}/api/v1/workers"),
        json!({"name": "cml-1", "region": "eu-west-1", "endpoint": simulator.url(),
               "username": "admin", "password": SIMULATOR_PASSWORD,
               "capacity": {"cpu_cores": 16, "memory_gb": 64, "storage_gb": 500, "max_nodes": 50}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    until(
        &client,
        &format!("{base}/api/v1/workers/{worker}"),
        Duration::from_secs(30),
        |w| w["service_status"] == "available",
    )
    .await;
    let definition = activate_definition(&client, &base, dir.path(), "ospf").await;

    // Every call about one lab answers only after 5 s: the start step is in flight for a while.
    let faults = format!("{}/_control/faults", simulator.url());
    let delayed = json!([{"path_prefix": "/api/v0/labs/", "delay_ms": 5000}]);
    let set = client.put(&faults).json(&delayed).send().await.unwrap();
    assert!(set.status().is_success());

    let start = Utc::now() + Minutes::seconds(30);
    let id = post(
        &client,
        &format!("{base}/api/v1/instances"),
        json!({"definition_id": definition.id, "definition_version": definition.version,
               "owner_id": "alice", "reservation_id": "r-crash",
               "timeslot_start": start, "timeslot_end": start + Minutes::seconds(60)}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let instance = format!("{base}/api/v1/instances/{id}");
    let import = format!(
        "{base}/api/v1/work-orders/{}",
        unique_order_id(&format!("lab.import:{id}"))
    );
    let start_order = format!(
        "{base}/api/v1/work-orders/{}",
        unique_order_id(&format!("lab.start:{id}"))
    );

    // The lab is imported and the start is held by the executor: kill -9 the server now.
    until(&client, &instance, Duration::from_secs(60), |i| i["lab_id"].is_string()).await;
    until(&client, &start_order, Duration::from_secs(30), |o| {
        matches!(o["state"].as_str(), Some("preparing" | "running"))
    })
    .await;
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    client.delete(&faults).send().await.unwrap();

    let mut server = start_server(LABLET, dir.path(), port, ENV);
    wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    let running = until(&client, &instance, Duration::from_secs(60), |i| i["state"] == "running").await;
    let started = get_json(&client, &start_order).await;
    assert_eq!(started["state"], "completed", "{started}");
    assert_eq!(
        started["attempt"], 2,
        "the dead executor's attempt was run again: {started}"
    );
    assert_eq!(started["errors"][0]["error"], "lease expired", "{started}");
    assert_eq!(
        get_json(&client, &import).await["attempt"],
        1,
        "the import was not repeated"
    );
    assert_eq!(simulator.labs().len(), 1, "exactly one lab");
    assert_eq!(simulator.labs()[0].0, running["lab_id"].as_str().unwrap());

    // At its end the instance is collected, graded and its lab removed.
    let collecting = until(&client, &instance, Duration::from_secs(120), |i| {
        !i["assessment_requested_at"].is_null()
    })
    .await;
    assert_eq!(collecting["state"], "collecting");
    for (event_id, event_type, data) in [
        (
            "c-1",
            "collection.completed",
            json!({"instance_id": id, "collection_id": "col-1"}),
        ),
        (
            "g-1",
            "grading.completed",
            json!({"instance_id": id, "score": {"total": 5, "max": 5}, "passed": true}),
        ),
    ] {
        let event = json!({"specversion": "1.0", "id": event_id, "source": "/assessment",
                           "type": format!("io.lablet.assessment.{event_type}"), "data": data});
        let answer = client
            .post(format!("{base}/api/v1/events"))
            .header("content-type", "application/cloudevents+json")
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 202);
    }
    let ended = until(&client, &instance, Duration::from_secs(60), |i| {
        i["state"] == "terminated" && i["lab_removed"] == true
    })
    .await;
    let steps: Vec<&str> = ended["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["event_type"] == "lablet_instance.step_recorded")
        .filter_map(|entry| entry["changed_fields"]["last_step"]["new"]["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "lab.import",
            "lab.start",
            "assessment.collect",
            "lab.stop",
            "lab.wipe",
            "lab.delete"
        ],
        "each step recorded once, in order"
    );
    assert!(simulator.labs().is_empty(), "the lab is gone");
    server.kill().unwrap();
    server.wait().unwrap();
    simulator.stop().await;
}
