//! The CML fleet against the CML simulator over real HTTP: workers registered with sealed
//! credentials, labs refreshed into lab records (appear, change, vanish), monitoring that records
//! only what moved, idle status, re-authentication, and a failing or hanging worker isolated.

use lablet_cml_simulator::{LabSeed, RunningSimulator, SimulatorConfig};
use lablet_infrastructure::Settings;
use lablet_tests::server::{error_fields, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "sim-password-7d1f0c";

async fn simulator(titles: &[&str]) -> RunningSimulator {
    let config = SimulatorConfig {
        password: PASSWORD.into(),
        ..SimulatorConfig::default()
    };
    let simulator = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("simulator starts");
    for title in titles {
        simulator.add_lab(LabSeed {
            title: (*title).into(),
            node_count: 3,
            link_count: 2,
            groups: vec!["students".into()],
            ..LabSeed::default()
        });
    }
    simulator
}

/// Sends a control request to a simulator.
async fn control(simulator: &RunningSimulator, method: reqwest::Method, path: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .request(method, format!("{}{path}", simulator.url()))
        .json(&body)
        .send()
        .await
        .expect("control request")
        .status()
        .as_u16()
}

/// Fleet jobs off, refresh throttle short, CML calls quick to give up.
fn quick(settings: &mut Settings) {
    settings.fleet.enabled = false;
    settings.fleet.manual_refresh_gap = Duration::from_millis(1);
    settings.cml.call_timeout = Duration::from_millis(500);
    settings.cml.read_retries = 0;
}

async fn register(server: &TestServer, simulator: &RunningSimulator, name: &str) -> String {
    let body = json!({
        "name": name, "region": "eu-west-1", "endpoint": simulator.url(),
        "username": "admin", "password": PASSWORD,
        "capacity": {"cpu_cores": 32, "memory_gb": 128, "storage_gb": 500, "max_nodes": 50},
    });
    let (status, created, _) = server.post("/api/v1/workers", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

async fn refresh(server: &TestServer, worker: &str) -> (u16, Value) {
    let (status, body, _) = server
        .post(&format!("/api/v1/workers/{worker}/labs/refresh"), &json!({}))
        .await;
    (status, body)
}

async fn labs_of(server: &TestServer, worker: &str, extra: &str) -> Vec<Value> {
    let position = server.head_position().await;
    let (status, page) = server
        .get_at(&format!("/api/v1/workers/{worker}/labs?{extra}"), position)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// Polls `GET path` until `done` holds (at most 15 s).
async fn eventually(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never became as expected: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn labs_appear_change_state_and_vanish() {
    let cml = simulator(&["CCNA", "CCNP"]).await;
    let server = TestServer::start_with(quick).await;
    let worker = register(&server, &cml, "worker-1").await;

    let (status, counts) = refresh(&server, &worker).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(
        (counts["labs"].as_u64(), counts["created"].as_u64()),
        (Some(2), Some(2))
    );
    let labs = labs_of(&server, &worker, "").await;
    assert_eq!(labs.len(), 2);
    let ccna = labs
        .iter()
        .find(|l| l["title"] == "CCNA")
        .expect("the CCNA lab")
        .clone();
    assert_eq!(ccna["state"], "DEFINED_ON_CORE");
    assert_eq!(ccna["node_count"], 3);
    assert_eq!(ccna["groups"], json!(["students"]));
    assert!(ccna["cml_created_at"].is_string());

    // Nothing changed: a refresh records nothing new on the labs.
    let (_, counts) = refresh(&server, &worker).await;
    assert_eq!(
        (counts["created"].as_u64(), counts["updated"].as_u64()),
        (Some(0), Some(0))
    );

    // The lab starts and is renamed on CML: one update, with its history.
    let lab_id = ccna["lab_id"].as_str().unwrap();
    let patch = json!({"state": "STARTED", "title": "CCNA v2"});
    assert_eq!(
        control(&cml, reqwest::Method::PATCH, &format!("/_control/labs/{lab_id}"), patch).await,
        204
    );
    let (_, counts) = refresh(&server, &worker).await;
    assert_eq!(counts["updated"], 1, "{counts}");
    let position = server.head_position().await;
    let (_, record) = server
        .get_at(
            &format!("/api/v1/lab-records/{}", ccna["id"].as_str().unwrap()),
            position,
        )
        .await;
    assert_eq!(record["state"], "STARTED");
    assert_eq!(record["title"], "CCNA v2");
    let history = record["operation_history"].as_array().expect("history");
    let state_change = history
        .iter()
        .find(|op| op["event_type"] == "lab_record.state_changed")
        .expect("the state change is in the history");
    assert_eq!(state_change["previous_state"], "DEFINED_ON_CORE");
    assert_eq!(state_change["new_state"], "STARTED");

    // The lab vanishes from CML: its record is removed.
    assert_eq!(
        control(
            &cml,
            reqwest::Method::DELETE,
            &format!("/_control/labs/{lab_id}"),
            json!({})
        )
        .await,
        204
    );
    let (_, counts) = refresh(&server, &worker).await;
    assert_eq!(counts["removed"], 1, "{counts}");
    assert_eq!(labs_of(&server, &worker, "").await.len(), 1);
    let all = labs_of(&server, &worker, "include_removed=true").await;
    let removed = all.iter().find(|l| l["lab_id"] == lab_id).expect("kept as removed");
    assert_eq!(removed["removal_reason"], "vanished_from_cml");

    // The worker records each sync.
    let position = server.head_position().await;
    let (_, doc) = server.get_at(&format!("/api/v1/workers/{worker}"), position).await;
    assert_eq!(doc["last_sync"]["removed"], 1);
    assert!(doc["last_synced_at"].is_string());
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn credentials_never_leak() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(quick).await;
    let worker = register(&server, &cml, "worker-secret").await;
    let (status, _) = refresh(&server, &worker).await;
    assert_eq!(status, 200, "the sealed credentials open and authenticate");

    let position = server.head_position().await;
    let answers = [
        server.get_at(&format!("/api/v1/workers/{worker}"), position).await.1,
        server.get_at("/api/v1/workers?include_history=true", position).await.1,
        server
            .get(&format!("/api/v1/audit/streams/cml_worker-{worker}"))
            .await
            .1,
        server.get("/api/v1/audit/events?limit=1000").await.1,
    ];
    for answer in &answers {
        let text = answer.to_string();
        assert!(!text.contains(PASSWORD), "the password shows in {text}");
        assert!(!text.contains("\"password\""), "a password field shows in {text}");
    }
    assert!(answers[2].to_string().contains("cml_worker.registered"));
    // Nothing in the data directory holds the password in the clear.
    for entry in std::fs::read_dir(&server.settings.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes());
            assert!(!found, "{} holds the password in the clear", path.display());
        }
    }
    server.stop().await;
    cml.stop().await;
}

/// How many CML calls a simulator has received.
/// The CML calls `simulator` has answered, by `"METHOD path"`.
async fn calls_of(simulator: &RunningSimulator) -> Value {
    reqwest::get(format!("{}/_control/calls", simulator.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn calls_to(simulator: &RunningSimulator) -> u64 {
    calls_of(simulator)
        .await
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum()
}

#[tokio::test]
async fn an_expired_token_is_renewed_once() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(quick).await;
    let worker = register(&server, &cml, "worker-token").await;
    assert_eq!(refresh(&server, &worker).await.0, 200);
    assert_eq!(
        control(&cml, reqwest::Method::POST, "/_control/expire-tokens", json!({})).await,
        204
    );
    let (status, counts) = refresh(&server, &worker).await;
    assert_eq!(status, 200, "{counts}");
    let calls: Value = reqwest::get(format!("{}/_control/calls", cml.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["POST /api/v0/authenticate"], 2, "{calls}");
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn bad_registrations_and_commands_are_refused_with_their_field() {
    let server = TestServer::start_with(quick).await;
    let cases = [
        (
            json!({"name": "w", "region": "r", "endpoint": "https://cml"}),
            "username",
        ),
        (
            json!({"name": "w", "region": "r", "endpoint": "ftp://cml", "username": "a", "password": "b"}),
            "endpoint",
        ),
        (json!({"name": " ", "region": "r"}), "name"),
        (json!({"name": "w", "region": "r", "username": "a"}), "password"),
        (
            json!({"name": "w", "region": "r", "endpoint": "https://cml", "username": "a", "password": ""}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let (status, problem, _) = server.post("/api/v1/workers", &body).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert_eq!(error_fields(&problem), vec![field], "{problem}");
    }
    let (status, problem, _) = server
        .post("/api/v1/workers", &json!({"name": "w", "region": "r", "colour": "red"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(error_fields(&problem), vec!["colour"]);
    let (status, _) = server.get("/api/v1/workers").await;
    assert_eq!(status, 200);
    let (_, page) = server.get_at("/api/v1/workers", server.head_position().await).await;
    assert_eq!(page["items"], json!([]), "nothing was registered");

    let unknown = uuid::Uuid::now_v7();
    let (status, _, _) = server
        .post(&format!("/api/v1/workers/{unknown}/drain"), &json!({}))
        .await;
    assert_eq!(status, 404);
    // A worker to provision (no endpoint) is pending: it cannot be drained.
    let (status, created, _) = server
        .post("/api/v1/workers", &json!({"name": "w", "region": "r"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, problem, _) = server.post(&format!("/api/v1/workers/{id}/drain"), &json!({})).await;
    assert_eq!(status, 409, "{problem}");
    let (_, page) = server
        .get_at("/api/v1/workers?status=pending", server.head_position().await)
        .await;
    assert_eq!(page["items"][0]["status"], "pending");
    let (status, problem) = server.get("/api/v1/workers?status=asleep").await;
    assert_eq!(status, 400, "{problem}");
    server.stop().await;
}

#[tokio::test]
async fn drain_cancel_stop_and_terminate_follow_the_status_machine() {
    let cml = simulator(&[]).await;
    let server = TestServer::start_with(quick).await;
    let worker = register(&server, &cml, "worker-life").await;
    let path = |action: &str| format!("/api/v1/workers/{worker}/{action}");
    assert_eq!(
        server.post(&path("drain"), &json!({"reason": "maintenance"})).await.0,
        200
    );
    assert_eq!(server.post(&path("cancel-drain"), &json!({})).await.0, 200);
    assert_eq!(server.post(&path("stop"), &json!({})).await.0, 200);
    assert_eq!(
        server.post(&path("drain"), &json!({})).await.0,
        409,
        "stopping cannot drain"
    );
    let (status, _, _) = server.post(&path("idle-detection"), &json!({"enabled": false})).await;
    assert_eq!(status, 200);
    let response = server
        .client
        .delete(server.url(&format!("/api/v1/workers/{worker}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, doc) = server
        .get_at(
            &format!("/api/v1/workers/{worker}?include_history=true"),
            server.head_position().await,
        )
        .await;
    assert_eq!(doc["status"], "terminated");
    assert_eq!(doc["idle_detection_enabled"], false);
    assert!(doc["terminated_at"].is_string());
    let statuses: Vec<&str> = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|op| op["new_state"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["running", "draining", "running", "stopping", "stopping", "terminated"]
    );
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn a_refresh_on_demand_is_throttled_per_worker() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(|s| {
        quick(s);
        s.fleet.manual_refresh_gap = Duration::from_secs(10);
    })
    .await;
    let worker = register(&server, &cml, "worker-throttled").await;
    assert_eq!(refresh(&server, &worker).await.0, 200);
    let response = server
        .client
        .post(server.url(&format!("/api/v1/workers/{worker}/labs/refresh")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry_after), "Retry-After {retry_after}");
    server.stop().await;
    cml.stop().await;
}

/// Jobs on, with short intervals.
fn jobs_every_few_hundred_ms(settings: &mut Settings) {
    settings.fleet.monitoring_interval = Duration::from_millis(200);
    settings.fleet.labs_refresh_interval = Duration::from_millis(300);
    settings.cml.call_timeout = Duration::from_millis(300);
    settings.cml.read_retries = 0;
}

#[tokio::test]
async fn a_hanging_worker_is_isolated_and_the_others_go_on() {
    let sick = simulator(&["Sick lab"]).await;
    let healthy = simulator(&["Healthy lab"]).await;
    let server = TestServer::start_with(jobs_every_few_hundred_ms).await;
    let sick_id = register(&server, &sick, "worker-sick").await;
    let healthy_id = register(&server, &healthy, "worker-healthy").await;
    for worker in [&sick_id, &healthy_id] {
        eventually(&server, &format!("/api/v1/workers/{worker}/labs"), |page| {
            page["items"].as_array().is_some_and(|items| items.len() == 1)
        })
        .await;
    }

    // The sick worker hangs on every call; the healthy one changes a lab.
    let hang = json!([{"hang": true}]);
    assert_eq!(
        control(&sick, reqwest::Method::PUT, "/_control/faults", hang).await,
        204
    );
    let labs = labs_of(&server, &healthy_id, "").await;
    let lab_id = labs[0]["lab_id"].as_str().unwrap();
    let rename = json!({"title": "Healthy lab, renamed"});
    assert_eq!(
        control(
            &healthy,
            reqwest::Method::PATCH,
            &format!("/_control/labs/{lab_id}"),
            rename
        )
        .await,
        204
    );

    eventually(&server, &format!("/api/v1/workers/{sick_id}"), |doc| {
        doc["service_status"] == "unavailable"
    })
    .await;
    eventually(&server, &format!("/api/v1/workers/{healthy_id}/labs"), |page| {
        page["items"][0]["title"] == "Healthy lab, renamed"
    })
    .await;
    // Isolated: a refresh of the sick worker fails at once, without calling it at all.
    let calls_before = calls_to(&sick).await;
    let started = Instant::now();
    let (status, problem) = refresh(&server, &sick_id).await;
    assert_eq!(status, 502, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("isolated"), "{problem}");
    assert_eq!(calls_to(&sick).await, calls_before, "the isolated worker was called");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    // The healthy worker is still available, and the hanging one keeps its labs.
    let (_, doc) = server.get(&format!("/api/v1/workers/{healthy_id}")).await;
    assert_eq!(doc["service_status"], "available");
    assert_eq!(
        labs_of(&server, &sick_id, "").await.len(),
        1,
        "a hanging worker's labs are not removed"
    );

    // A worker that answers 500 to everything is unavailable too.
    let fail = json!([{"fail_status": 500}]);
    assert_eq!(
        control(&healthy, reqwest::Method::PUT, "/_control/faults", fail).await,
        204
    );
    eventually(&server, &format!("/api/v1/workers/{healthy_id}"), |doc| {
        doc["service_status"] == "unavailable"
    })
    .await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("lablet_fleet_job_outcomes_total{job=\"monitoring\",outcome=\"unavailable\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("lablet_fleet_job_outcomes_total{job=\"labs_refresh\",outcome=\"labs_updated\"}"));
    server.stop().await;
    sick.stop().await;
    healthy.stop().await;
}

#[tokio::test]
async fn monitoring_records_what_moved_and_a_quiet_worker_writes_nothing() {
    let cml = simulator(&["CCNA"]).await;
    // Refreshes record each sync; here only monitoring runs often.
    let server = TestServer::start_with(|s| {
        jobs_every_few_hundred_ms(s);
        s.fleet.labs_refresh_interval = Duration::from_secs(3600);
    })
    .await;
    let worker = register(&server, &cml, "worker-watched").await;
    let path = format!("/api/v1/workers/{worker}");
    let doc = eventually(&server, &path, |doc| {
        doc["service_status"] == "available" && doc["metrics"].is_object() && doc["last_activity_at"].is_string()
    })
    .await;
    assert_eq!(doc["cml_version"], "2.9.0+build.12");
    assert_eq!(doc["license"]["license_type"], "enterprise");
    assert_eq!(doc["metrics"]["cpu_percent"], 12.5);
    assert_eq!(doc["metrics"]["labs_count"], 1);
    assert_eq!(doc["utilisation"]["nodes_percent"], 0.0);

    // Several passes later, nothing moved: no event was written.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, settled) = server.get(&path).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, later) = server.get(&path).await;
    assert_eq!(
        later["version"], settled["version"],
        "a quiet worker wrote events: {}",
        later["operation_history"]
    );

    // CPU moves by 3 points: noise, not recorded. Then by 40, with 10 nodes running: recorded.
    let figures = |cpu: f64, nodes: u32| json!({"cpu_percent": cpu, "memory_percent": 35.0, "disk_percent": 20.0, "running_nodes": nodes});
    assert_eq!(
        control(&cml, reqwest::Method::PUT, "/_control/figures", figures(15.5, 0)).await,
        204
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, noise) = server.get(&path).await;
    assert_eq!(noise["metrics"]["cpu_percent"], 12.5, "3 points is noise");
    assert_eq!(noise["version"], settled["version"]);
    assert_eq!(
        control(&cml, reqwest::Method::PUT, "/_control/figures", figures(52.5, 10)).await,
        204
    );
    let moved = eventually(&server, &path, |doc| doc["metrics"]["cpu_percent"] == 52.5).await;
    assert_eq!(moved["utilisation"]["nodes_percent"], 20.0);
    assert_eq!(moved["version"], settled["version"].as_u64().unwrap() + 1);

    // Idle status: active just now (the lab import), so not idle.
    let (status, idle) = server.get(&format!("{path}/idle-status")).await;
    assert_eq!(status, 200, "{idle}");
    assert_eq!(idle["idle"], false);
    assert_eq!(idle["timeout_minutes"], 60);
    assert_eq!(idle["recent_activity"][0]["category"], "import_lab");
    // Automation does not count as activity.
    let before = idle["last_activity_at"].clone();
    let automated = json!({"category": "start_lab", "user_id": "00000000-0000-4000-a000-000000000001"});
    assert_eq!(
        control(&cml, reqwest::Method::POST, "/_control/telemetry", automated).await,
        204
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, idle) = server.get(&format!("{path}/idle-status")).await;
    assert_eq!(idle["last_activity_at"], before);
    server.stop().await;
    cml.stop().await;
}

/// `lablet serve --demo` in `data_dir`, with the jobs every second or two.
fn start_demo(data_dir: &std::path::Path, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_lablet-under-test"))
        .args(["serve", "--demo", "--addr", &format!("127.0.0.1:{port}")])
        .env("LABLET_DATA_DIR", data_dir)
        .env("LABLET_LOG", "warn")
        .env("LABLET_MONITORING_INTERVAL", "1s")
        .env("LABLET_LABS_REFRESH_INTERVAL", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the demo starts")
}

/// The demo's own labs in a page of lab records: its lablets' labs (titled `lablet-…`) left out.
fn demo_labs(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|lab| !lab["title"].as_str().is_some_and(|t| t.starts_with("lablet-")))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `url` until `done` holds (at most 30 s).
async fn eventually_at(client: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await {
            if let Ok(body) = response.json::<Value>().await {
                if done(&body) {
                    return body;
                }
            }
        }
        assert!(Instant::now() < deadline, "{url} never became as expected");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_demo_shows_a_living_fleet_and_retires_its_earlier_workers() {
    let dir = tempfile::tempdir().unwrap();
    let port = lablet_tests::process::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut demo = start_demo(dir.path(), port);
    lablet_tests::server::wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    let client = lablet_tests::server::admin_client(dir.path());
    let available = |page: &Value| {
        page["items"].as_array().is_some_and(|items| {
            items.len() == 3
                && items
                    .iter()
                    .all(|w| w["service_status"] == "available" && w["last_synced_at"].is_string())
        })
    };
    let workers = eventually_at(
        &client,
        &format!("{base}/api/v1/workers?region=demo&status=running"),
        available,
    )
    .await;
    assert_eq!(workers["items"][2]["license"]["license_type"], "personal");
    let labs = eventually_at(&client, &format!("{base}/api/v1/lab-records"), |page| {
        demo_labs(page).len() == 9
    })
    .await;
    assert!(demo_labs(&labs).iter().any(|lab| lab["state"] == "STARTED"));
    // Its three lablets are booked, placed and running on the simulated fleet.
    let instances = eventually_at(&client, &format!("{base}/api/v1/instances"), |page| {
        page["items"].as_array().is_some_and(|items| {
            items.len() == 3 && items.iter().all(|i| i["state"] == "running" && i["lab_id"].is_string())
        })
    })
    .await;
    let lablet_labs = eventually_at(&client, &format!("{base}/api/v1/lab-records"), |page| {
        page["items"].as_array().is_some_and(|items| items.len() == 12)
    })
    .await;
    for instance in instances["items"].as_array().unwrap() {
        let title = format!("lablet-{}", instance["id"].as_str().unwrap());
        assert!(
            lablet_labs["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|lab| lab["title"] == title.as_str()),
            "no lab {title} on the fleet"
        );
    }
    demo.kill().unwrap();
    demo.wait().unwrap();

    let mut again = start_demo(dir.path(), port);
    lablet_tests::server::wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    eventually_at(
        &client,
        &format!("{base}/api/v1/workers?region=demo&status=running"),
        available,
    )
    .await;
    let retired = eventually_at(
        &client,
        &format!("{base}/api/v1/workers?region=demo&status=terminated"),
        |page| page["items"].as_array().is_some_and(|items| items.len() == 3),
    )
    .await;
    assert!(retired["items"][0]["terminated_at"].is_string());
    // The earlier workers' labs are removed; the new workers' labs are listed.
    let labs = eventually_at(&client, &format!("{base}/api/v1/lab-records"), |page| {
        demo_labs(page).len() == 9
    })
    .await;
    let first_demo: Vec<&str> = workers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    for lab in demo_labs(&labs) {
        assert!(
            !first_demo.contains(&lab["worker_id"].as_str().unwrap()),
            "a retired worker's lab is listed: {lab}"
        );
    }
    let removed = eventually_at(
        &client,
        &format!("{base}/api/v1/lab-records?include_removed=true&limit=100"),
        |page| demo_labs(page).len() == 18,
    )
    .await;
    let reasons: Vec<String> = demo_labs(&removed)
        .iter()
        .filter_map(|l| l["removal_reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons, vec!["worker_terminated".to_owned(); 9]);
    again.kill().unwrap();
    again.wait().unwrap();
}

const TLS_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cml-tls");

async fn tls_simulator() -> RunningSimulator {
    let chain = std::fs::read(format!("{TLS_FIXTURES}/server.pem")).unwrap();
    let key = std::fs::read(format!("{TLS_FIXTURES}/server.key")).unwrap();
    let config = SimulatorConfig {
        password: PASSWORD.into(),
        ..SimulatorConfig::default()
    };
    let simulator = RunningSimulator::start_tls("127.0.0.1:0".parse().unwrap(), config, &chain, &key)
        .await
        .expect("simulator starts");
    simulator.add_lab(LabSeed {
        title: "Behind TLS".into(),
        ..LabSeed::default()
    });
    simulator
}

async fn register_insecure(server: &TestServer, simulator: &RunningSimulator, insecure_tls: bool) -> String {
    let body = json!({
        "name": "tls-worker", "region": "eu-west-1", "endpoint": simulator.url(),
        "username": "admin", "password": PASSWORD, "insecure_tls": insecure_tls,
    });
    let (status, created, _) = server.post("/api/v1/workers", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tls_is_verified_unless_a_worker_is_marked_insecure_or_its_ca_is_trusted() {
    let cml = tls_simulator().await;
    assert!(cml.url().starts_with("https://"));

    let server = TestServer::start_with(quick).await;
    let verified = register_insecure(&server, &cml, false).await;
    let (status, problem) = refresh(&server, &verified).await;
    assert_eq!(status, 502, "an unknown CA is refused: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("certificate is signed by an unknown issuer"),
        "the cause is named: {problem}"
    );
    let insecure = register_insecure(&server, &cml, true).await;
    let (status, counts) = refresh(&server, &insecure).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["created"], 1);
    server.stop().await;

    let trusting = TestServer::start_with(|s| {
        quick(s);
        s.cml.ca_bundle = Some(format!("{TLS_FIXTURES}/ca.pem").into());
    })
    .await;
    let verified = register_insecure(&trusting, &cml, false).await;
    let (status, counts) = refresh(&trusting, &verified).await;
    assert_eq!(status, 200, "the CA bundle is trusted: {counts}");
    trusting.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn a_quiet_worker_is_reported_idle_once_per_quiet_period() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(|s| {
        jobs_every_few_hundred_ms(s);
        s.fleet.labs_refresh_interval = Duration::from_secs(3600);
        s.fleet.idle_policy = lablet_domain::worker::IdlePolicy {
            timeout: chrono::Duration::seconds(1),
            snooze_after_resume: chrono::Duration::seconds(1),
        };
    })
    .await;
    let worker = register(&server, &cml, "worker-quiet").await;
    let path = format!("/api/v1/workers/{worker}");
    eventually(&server, &path, |doc| doc["idle_detected_at"].is_string()).await;
    let (_, idle) = server.get(&format!("{path}/idle-status")).await;
    assert_eq!(idle["idle"], true, "{idle}");
    assert!(idle["reason"].as_str().unwrap().starts_with("no activity"), "{idle}");

    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, doc) = server.get(&path).await;
    let reports = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["event_type"] == "cml_worker.idle_detected")
        .count();
    assert_eq!(reports, 1, "reported once: {}", doc["operation_history"]);

    // New activity starts a new quiet period, reported again once it has lasted.
    let person = json!({"category": "user_activity", "user_id": "8f3c0a52-1111-4c8e-9d5e-000000000001"});
    assert_eq!(
        control(&cml, reqwest::Method::POST, "/_control/telemetry", person).await,
        204
    );
    eventually(&server, &path, |doc| {
        doc["operation_history"].as_array().is_some_and(|ops| {
            ops.iter()
                .filter(|op| op["event_type"] == "cml_worker.idle_detected")
                .count()
                == 2
        })
    })
    .await;

    let (status, _, _) = server
        .post(&format!("{path}/idle-detection"), &json!({"enabled": false}))
        .await;
    assert_eq!(status, 200);
    let (_, idle) = server.get(&format!("{path}/idle-status")).await;
    assert_eq!(
        (idle["idle"].as_bool(), idle["reason"].as_str()),
        (Some(false), Some("idle detection is off"))
    );
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn the_refresh_visits_at_most_five_workers_at_once() {
    let cml = simulator(&["Shared lab"]).await;
    // Fetching a lab's details takes 200 ms; monitoring never fetches them, the refresh does.
    let slow = json!([{"path_prefix": "/api/v0/labs/", "delay_ms": 200}]);
    assert_eq!(control(&cml, reqwest::Method::PUT, "/_control/faults", slow).await, 204);
    let server = TestServer::start_with(|s| {
        jobs_every_few_hundred_ms(s);
        s.fleet.labs_refresh_interval = Duration::from_secs(1);
        s.cml.call_timeout = Duration::from_secs(5);
    })
    .await;
    let mut workers = Vec::new();
    for n in 0..8 {
        workers.push(register(&server, &cml, &format!("worker-{n}")).await);
    }
    for worker in &workers {
        eventually(&server, &format!("/api/v1/workers/{worker}"), |doc| {
            doc["last_synced_at"].is_string()
        })
        .await;
    }
    let in_flight: Value = reqwest::get(format!("{}/_control/in-flight", cml.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let max = in_flight["max"].as_u64().unwrap();
    assert!((2..=5).contains(&max), "{max} workers were refreshed at once");
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn the_refresh_sweeps_labs_of_workers_terminated_without_their_removal() {
    let cml = simulator(&["CCNA", "CCNP"]).await;
    let server = TestServer::start_with(jobs_every_few_hundred_ms).await;
    let worker = register(&server, &cml, "worker-swept").await;
    eventually(&server, &format!("/api/v1/workers/{worker}/labs"), |page| {
        page["items"].as_array().is_some_and(|items| items.len() == 2)
    })
    .await;
    // `/status` moves the worker without touching its labs, as a crash mid-termination would.
    let (status, _, _) = server
        .post(
            &format!("/api/v1/workers/{worker}/status"),
            &json!({"status": "terminated"}),
        )
        .await;
    assert_eq!(status, 200);
    eventually(&server, &format!("/api/v1/workers/{worker}/labs"), |page| {
        page["items"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    let removed = labs_of(&server, &worker, "include_removed=true").await;
    assert!(
        removed.iter().all(|lab| lab["removal_reason"] == "worker_terminated"),
        "{removed:?}"
    );
    server.stop().await;
    cml.stop().await;
}

#[tokio::test]
async fn new_credentials_take_effect_at_the_next_call_and_are_never_shown() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(quick).await;
    let worker = register(&server, &cml, "worker-rotated").await;
    assert_eq!(refresh(&server, &worker).await.0, 200);
    let path = format!("/api/v1/workers/{worker}/credentials");

    let wrong = "rotated-but-wrong-4e1a";
    let (status, _, _) = server
        .post(&path, &json!({"username": "admin", "password": wrong}))
        .await;
    assert_eq!(status, 200);
    let (status, problem) = refresh(&server, &worker).await;
    assert_eq!(status, 502, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("refused the credentials"),
        "{problem}"
    );
    let (status, _, _) = server
        .post(&path, &json!({"username": "admin", "password": PASSWORD}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&server, &worker).await.0, 200, "the right password works again");

    let (_, doc) = server
        .get_at(&format!("/api/v1/workers/{worker}"), server.head_position().await)
        .await;
    let text = doc.to_string();
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    let changes = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["event_type"] == "cml_worker.credentials_changed")
        .count();
    assert_eq!(changes, 2);
    assert!(doc["credentials_changed_at"].is_string());

    let (status, problem, _) = server.post(&path, &json!({"username": "admin", "password": ""})).await;
    assert_eq!((status, error_fields(&problem)), (422, vec!["password"]));
    let unknown = uuid::Uuid::now_v7();
    let (status, _, _) = server
        .post(
            &format!("/api/v1/workers/{unknown}/credentials"),
            &json!({"username": "a", "password": "b"}),
        )
        .await;
    assert_eq!(status, 404);
    server.stop().await;
    cml.stop().await;
}

/// Waits (real time, at most 10 s) until `simulator` has answered more than `than` calls.
async fn calls_exceed(simulator: &RunningSimulator, than: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = calls_to(simulator).await;
        if calls > than {
            return calls;
        }
        assert!(Instant::now() < deadline, "no call beyond {than} within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_worker_delays_no_other_workers_monitoring_on_virtual_time() {
    use lablet_application::ports::{Clock, ManualClock};
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    let sick = simulator(&["Sick lab"]).await;
    let healthy = simulator(&["Healthy lab"]).await;
    let server = TestServer::start_with_clock(
        |s| {
            // Default intervals (5 min monitoring, 30 min refresh) on the manual clock; a
            // hanging call holds its job for 30 s of real time.
            s.cml.call_timeout = Duration::from_secs(30);
            s.cml.read_retries = 0;
        },
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    let hang = json!([{"hang": true}]);
    assert_eq!(
        control(&sick, reqwest::Method::PUT, "/_control/faults", hang).await,
        204
    );
    register(&server, &sick, "worker-sick").await;
    register(&server, &healthy, "worker-healthy").await;

    // Nothing is due until the monitoring interval passes on the clock: no call at all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls_to(&healthy).await, 0, "monitored before its time");

    // Each time five minutes pass, the healthy worker is monitored again at once, while the
    // sick worker's first job still hangs (its 30 s timeout has not run out).
    let started = Instant::now();
    let mut calls = 0;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(5 * 60));
        calls_exceed(&healthy, calls).await;
        // Let the healthy worker's job finish before the next interval.
        tokio::time::sleep(Duration::from_millis(300)).await;
        calls = calls_to(&healthy).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the healthy worker waited for the hanging one: {:?}",
        started.elapsed()
    );
    server.stop().await;
    sick.stop().await;
    healthy.stop().await;
}

/// How many logins `simulator` has been asked for.
async fn logins_to(simulator: &RunningSimulator) -> u64 {
    calls_of(simulator).await["POST /api/v0/authenticate"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_refused_login_is_not_tried_again_until_the_credentials_change() {
    let cml = simulator(&["CCNA"]).await;
    let server = TestServer::start_with(jobs_every_few_hundred_ms).await;
    let body = json!({
        "name": "wrong-password", "region": "eu-west-1", "endpoint": cml.url(),
        "username": "admin", "password": "not-the-password",
        "capacity": {"cpu_cores": 32, "memory_gb": 128, "storage_gb": 500, "max_nodes": 50},
    });
    let (status, created, _) = server.post("/api/v1/workers", &body).await;
    assert_eq!(status, 201, "{created}");
    let worker = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/workers/{worker}");
    eventually(&server, &path, |doc| doc["credentials_refused"] == true).await;
    // Monitoring goes on every 200 ms; the refused credentials are not tried again.
    let logins = logins_to(&cml).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(logins_to(&cml).await, logins, "no login while the backoff runs");
    assert_eq!(logins, 1, "one refused login, not one per call");

    let fixed = json!({"username": "admin", "password": PASSWORD});
    let (status, answer, _) = server.post(&format!("{path}/credentials"), &fixed).await;
    assert_eq!(status, 200, "{answer}");
    // Figures need a login: once they appear, the new credentials were tried and accepted.
    eventually(&server, &path, |doc| {
        doc["credentials_refused"] == false && doc["metrics"].is_object()
    })
    .await;
    assert!(logins_to(&cml).await > logins, "new credentials are tried at once");
    let (_, doc) = server.get(&path).await;
    let kinds: Vec<&str> = doc["operation_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|op| op["event_type"].as_str())
        .collect();
    assert!(kinds.contains(&"cml_worker.credentials_refused"), "{kinds:?}");
    server.stop().await;
    cml.stop().await;
}
