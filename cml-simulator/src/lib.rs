//! A CML 2.9 simulator for tests and the demo.
//!
//! It serves, over real HTTP, the part of the CML API Lablet calls (`/api/v0/authenticate`,
//! system information, health, stats, licensing, labs and their actions, telemetry events) with
//! the shapes and status codes of the CML OpenAPI document, and holds its labs in memory. A
//! control API under `/_control` adds, changes and deletes labs, expires tokens, adds telemetry,
//! sets the figures stats report, and makes calls fail with a status or hang.

mod cml_api;
mod control;
mod model;
mod shapes;
mod tls;

pub use model::{Fault, LabChange, LabSeed, SimulatorConfig};

use model::Shared;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A simulator serving on a local port until dropped or stopped.
pub struct RunningSimulator {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSimulator {
    /// Serves a simulator over HTTP on `addr` (port 0: any free port).
    pub async fn start(addr: SocketAddr, config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(Self::serve(listener, addr, "http", config))
    }

    /// Serves a simulator over HTTPS with a PEM certificate chain and key, as CML servers are.
    pub async fn start_tls(
        addr: SocketAddr,
        config: SimulatorConfig,
        certificate_chain_pem: &[u8],
        private_key_pem: &[u8],
    ) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        let addr = tcp.local_addr()?;
        let listener = tls::TlsListener::new(tcp, certificate_chain_pem, private_key_pem)?;
        Ok(Self::serve(listener, addr, "https", config))
    }

    fn serve<L>(listener: L, addr: SocketAddr, scheme: &'static str, config: SimulatorConfig) -> Self
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let shared = Shared::new(config);
        let router = cml_api::router(shared.clone()).merge(control::router(shared.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        RunningSimulator {
            addr,
            scheme,
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a CML client is given (`http://127.0.0.1:<port>`, or `https://…`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Adds a lab and answers its id.
    pub fn add_lab(&self, seed: LabSeed) -> String {
        self.shared.add_lab(seed)
    }

    /// Changes a lab as the control API does; false if there is no such lab.
    pub fn change_lab(&self, id: &str, change: LabChange) -> bool {
        self.shared.lock().apply_change(id, change)
    }

    /// The ids and states of the labs, in creation order.
    pub fn labs(&self) -> Vec<(String, String)> {
        let state = self.shared.lock();
        state
            .labs
            .iter()
            .map(|lab| (lab.id.clone(), lab.state.clone()))
            .collect()
    }

    /// The title of lab `id`, if there is such a lab.
    pub fn lab_title(&self, id: &str) -> Option<String> {
        let state = self.shared.lock();
        state.labs.iter().find(|lab| lab.id == id).map(|lab| lab.title.clone())
    }

    /// Stops serving and waits until the listener is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
