//! A Lablet server for one test: its own data directory, an ephemeral port, an HTTP client.

use lablet_api::app::{build, serve_until, App};
use lablet_infrastructure::Settings;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with default settings in a fresh temporary data directory.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose settings `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let mut settings = Settings::defaults_in(dir.path());
        adjust(&mut settings);
        let mut server = Self::start_in(settings).await;
        server._dir = Some(dir);
        server
    }

    /// A server on existing settings (a data directory the caller owns).
    pub async fn start_in(settings: Settings) -> TestServer {
        let app: App = build(&settings).await.expect("application starts");
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
            client: reqwest::Client::new(),
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
