//! A Lablet server for one test: its own data directory, an ephemeral port, an HTTP client.

use lablet_api::app::{build, build_on, build_on_clock, serve_until, App};
use lablet_api::auth::{issue_local, Role, TokenRequest};
use lablet_application::envelope::{truncate_to_micros, EventMetadata, NewEvent};
use lablet_application::ports::{Clock, EventStore, ExpectedVersion};
use lablet_infrastructure::stores::open_stores;
use lablet_infrastructure::Settings;
use serde_json::value::RawValue;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    /// Sends an admin's bearer token with every request.
    pub client: reqwest::Client,
    pub settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// The defaults in `dir`, with definition artifacts synced every [`TEST_SYNC_INTERVAL_MS`].
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::defaults_in(dir);
    settings.definition_sync_interval = std::time::Duration::from_millis(TEST_SYNC_INTERVAL_MS);
    // Tests move instances and run work orders by hand unless they say otherwise.
    settings.lifecycle.enabled = false;
    settings.executors.concurrency = 0;
    settings
}

impl TestServer {
    /// Definition `name` 1.0.0, active (its artifact a file in the data directory).
    pub async fn active_definition(&self, name: &str) -> ActiveDefinition {
        activate_definition(&self.client, &self.url(""), &self.settings.data_dir, name).await
    }

    /// A server with default settings in a fresh temporary data directory.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose settings `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut settings = test_settings(dir.path());
        adjust(&mut settings);
        let mut server = Self::start_in(settings).await;
        server._dir = Some(dir);
        server
    }

    /// A server whose commands, jobs and timers read `clock`, with settings `adjust` changed.
    pub async fn start_with_clock(adjust: impl FnOnce(&mut Settings), clock: Arc<dyn Clock>) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut settings = test_settings(dir.path());
        adjust(&mut settings);
        lablet_migrations::migrate_all(&settings).await.expect("migrations");
        let stores = open_stores(&settings).await.expect("stores open");
        let app = build_on_clock(&settings, stores, clock)
            .await
            .expect("application starts");
        let mut server = Self::serve(app, settings).await;
        server._dir = Some(dir);
        server
    }

    /// A server on existing settings (a data directory the caller owns).
    pub async fn start_in(settings: Settings) -> TestServer {
        let app: App = build(&settings).await.expect("application starts");
        Self::serve(app, settings).await
    }

    /// A server whose event log is `events` instead of the configured one.
    pub async fn start_on_event_store(events: Arc<dyn EventStore>) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let settings = Settings::defaults_in(dir.path());
        lablet_migrations::migrate_all(&settings).await.expect("migrations");
        let mut stores = open_stores(&settings).await.expect("stores open");
        stores.events = events;
        let app = build_on(&settings, stores).await.expect("application starts");
        let mut server = Self::serve(app, settings).await;
        server._dir = Some(dir);
        server
    }

    async fn serve(app: App, settings: Settings) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("ephemeral port");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = serve_until(app, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        let server = TestServer {
            addr,
            client: admin_client_for(&settings),
            settings,
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        };
        server.wait_ready().await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until `/health/ready` answers 200.
    pub async fn wait_ready(&self) {
        wait_ready(&self.client, &self.url("/health/ready")).await;
    }

    /// POSTs JSON; answers (status, body, `Lablet-Position`).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value, Option<u64>) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent");
        answer(response).await
    }

    /// POSTs a raw body with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        let (status, body, _) = answer(response).await;
        (status, body)
    }

    /// GETs without waiting for projections.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("request sent");
        let (status, body, _) = answer(response).await;
        (status, body)
    }

    /// GETs after the read models have applied `position` (read-your-writes).
    pub async fn get_at(&self, path: &str, position: u64) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .header("lablet-min-position", position.to_string())
            .send()
            .await
            .expect("request sent");
        let (status, body, _) = answer(response).await;
        (status, body)
    }

    /// The event log's head position as the readiness probe reports it.
    pub async fn head_position(&self) -> u64 {
        let (_, body) = self.get("/health/ready").await;
        body["head_position"].as_u64().unwrap_or(0)
    }

    /// The `/metrics` page as text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request sent");
        response.text().await.expect("a text answer")
    }

    /// Makes the `lab_records` projection stop for good: observes a lab, then (as another
    /// writer) appends an event to its stream that no projector can read. Answers the poison
    /// event's position, which queries on lab records can wait for but never reach.
    pub async fn stall_lab_records(&self) -> u64 {
        let observation =
            serde_json::json!({"worker_id": uuid::Uuid::now_v7(), "lab_id": "stalled", "state": "STOPPED"});
        let (status, lab, _) = self.post("/api/v1/lab-records/observations", &observation).await;
        assert_eq!(status, 200, "{lab}");
        let log = open_stores(&self.settings).await.expect("the server's stores").events;
        let poison = NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: "lab_record.state_changed".into(),
            schema_version: 1,
            occurred_at: truncate_to_micros(chrono::Utc::now()),
            payload: RawValue::from_string(r#"{"previous":"NOT_A_STATE"}"#.into()).expect("JSON"),
            metadata: EventMetadata {
                actor: "tester".into(),
                ..EventMetadata::default()
            },
        };
        let stream = format!("lab_record-{}", lab["id"].as_str().expect("an id"));
        let appended = log
            .append(&stream, ExpectedVersion::Exact(1), vec![poison])
            .await
            .expect("the poison event is appended");
        appended.last_position
    }

    /// Stops serving and waits for the background work to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A token for `subject` with `roles`, signed with the local key of `settings`' data directory.
pub fn token(settings: &Settings, subject: &str, roles: &[Role]) -> String {
    let request = TokenRequest {
        subject: subject.into(),
        roles: roles.to_vec(),
        ttl: Duration::from_secs(3600),
    };
    issue_local(&settings.auth, &request).expect("a local token")
}

/// A client that sends `token` as its bearer token.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// An admin's client on the local key; a plain client when tokens come from an OIDC issuer.
fn admin_client_for(settings: &Settings) -> reqwest::Client {
    match settings.auth.issuer {
        lablet_infrastructure::auth_settings::TokenIssuer::Local { .. } => {
            client_with_token(&token(settings, "test-admin", &[Role::Admin]))
        }
        lablet_infrastructure::auth_settings::TokenIssuer::Oidc { .. } => reqwest::Client::new(),
    }
}

/// A client acting as an admin of the server over `data_dir` (a separate process).
pub fn admin_client(data_dir: &std::path::Path) -> reqwest::Client {
    admin_client_for(&Settings::defaults_in(data_dir))
}

/// The body of a request for a lablet instance of `definition`, for `owner` under
/// `reservation`, for one hour years ahead (never due, so the scheduler leaves it pending).
pub fn instance_request(definition: &ActiveDefinition, reservation: &str, owner: &str) -> Value {
    serde_json::json!({
        "definition_id": definition.id, "definition_version": definition.version,
        "owner_id": owner, "reservation_id": reservation,
        "timeslot_start": "2030-12-01T09:00:00Z", "timeslot_end": "2030-12-01T10:00:00Z"
    })
}

/// A lablet definition whose version 1.0.0 is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveDefinition {
    pub id: String,
    pub version: String,
}

/// The topology an active test definition points at: a titled lab of three nodes.
const TOPOLOGY: &str = "lab:\n  title: test lab\nnodes:\n  - id: n0\n  - id: n1\n  - id: n2\nlinks: []\n";

/// Creates definition `name` 1.0.0 (as an admin, through `client` on the server at `base`)
/// whose artifact is a file in `dir`, and waits until its sync made it active.
pub async fn activate_definition(
    client: &reqwest::Client,
    base: &str,
    dir: &std::path::Path,
    name: &str,
) -> ActiveDefinition {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, TOPOLOGY).expect("the topology file");
    let mut body = definition_request(name, "1.0.0");
    body["spec"]["artifact_uri"] = serde_json::json!(format!("file://{}", file.display()));
    body["spec"]["topology_sha256"] =
        serde_json::json!(lablet_infrastructure::artifacts::sha256_hex(TOPOLOGY.as_bytes()));
    let answer = client
        .post(format!("{base}/api/v1/definitions"))
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(answer.status(), 201, "the definition is created");
    let id = answer.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let definition = get_json(client, &format!("{base}/api/v1/definitions/{id}")).await;
        if definition["active_version"] == "1.0.0" {
            return ActiveDefinition {
                id,
                version: "1.0.0".into(),
            };
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the definition never went active: {definition}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How often a test server syncs definition artifacts (`LABLET_DEFINITION_SYNC_INTERVAL_MS`).
pub const TEST_SYNC_INTERVAL_MS: u64 = 50;

/// The fields a problem document's `errors` name, in order.
/// A worker template's fields, costing `hourly_cost` an hour.
pub fn template_spec(hourly_cost: f64) -> Value {
    serde_json::json!({
        "instance_type": "m5zn.metal",
        "image_pattern": "cml-2.9-*",
        "declared_capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 1000, "max_nodes": 120},
        "license_type": "enterprise",
        "hourly_cost": hourly_cost
    })
}

/// A definition body: `name` at `version`, a three-node topology at an HTTPS artifact.
pub fn definition_request(name: &str, version: &str) -> Value {
    serde_json::json!({
        "name": name,
        "version": version,
        "spec": {
            "artifact_uri": format!("https://artifacts.example.net/{name}/{version}.yaml"),
            "topology_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "resources": {"cpu_cores": 4, "memory_gb": 16, "storage_gb": 20},
            "node_count": 3,
            "ports": [{"name": "console", "protocol": "tcp"}]
        }
    })
}

pub fn error_fields(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

/// GETs `url` and parses the answer as JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("a JSON answer")
}

/// Polls `url` until it answers 200, for at most 30 seconds.
pub async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

async fn answer(response: reqwest::Response) -> (u16, Value, Option<u64>) {
    let status = response.status().as_u16();
    let position = response
        .headers()
        .get("lablet-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    if status >= 400 {
        assert_eq!(
            content_type, "application/problem+json",
            "error answers are problems: {status} {text}"
        );
    }
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body, position)
}
