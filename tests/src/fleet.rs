//! A simulated CML fleet for black-box tests: a simulator, workers registered on it, and a
//! wait for a read-model document to get somewhere.

use crate::server::{get_json, TestServer};
use lablet_cml_simulator::{RunningSimulator, SimulatorConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The admin password of the simulators these helpers start.
pub const SIMULATOR_PASSWORD: &str = "sim-password-5e2a9b";

/// A simulated CML server on an ephemeral port.
pub async fn start_simulator() -> RunningSimulator {
    let config = SimulatorConfig {
        password: SIMULATOR_PASSWORD.into(),
        ..SimulatorConfig::default()
    };
    RunningSimulator::start("127.0.0.1:0".parse().expect("an address"), config)
        .await
        .expect("the simulator starts")
}

/// Registers a worker `name` of `cores` cores on `simulator`; answers its id.
pub async fn register_worker(server: &TestServer, simulator: &RunningSimulator, name: &str, cores: u32) -> String {
    let body = json!({
        "name": name, "region": "eu-west-1", "endpoint": simulator.url(),
        "username": "admin", "password": SIMULATOR_PASSWORD,
        "capacity": {"cpu_cores": cores, "memory_gb": 256, "storage_gb": 1000, "max_nodes": 100},
    });
    let (status, created, _) = server.post("/api/v1/workers", &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("an id").to_owned()
}

/// Polls `path` until `done` holds, for at most `within`.
pub async fn until_within(server: &TestServer, path: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let document = get_json(&server.client, &server.url(path)).await;
        if done(&document) {
            return document;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {document}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `path` until `done` holds, for at most 30 seconds.
pub async fn until(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    until_within(server, path, Duration::from_secs(30), done).await
}
