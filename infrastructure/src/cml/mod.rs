//! The CML adapter: an HTTP client per worker behind the [`CmlConnector`] port.
//!
//! TLS is verified by default against the web PKI roots plus an optional CA bundle
//! (`LABLET_CML_CA_BUNDLE`); a worker registered with `insecure_tls` skips verification, for
//! the self-signed certificates CML servers often have. Clients are kept per worker so that each
//! keeps its token and its circuit breaker across jobs.

mod breaker;
mod client;
mod wire;

pub use breaker::{BreakerSettings, CircuitBreaker};
pub use client::HttpCmlClient;

use async_trait::async_trait;
use lablet_application::ports::{CmlClient, CmlConnector, CmlError, CmlTarget, CredentialVault};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How Lablet talks to CML servers.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlClientSettings {
    /// Longest wait for one call's answer (`LABLET_CML_TIMEOUT`).
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts of a read that could not reach the server or got 5xx/429.
    pub read_retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    pub breaker: BreakerSettings,
    /// PEM file of CA certificates trusted besides the web PKI roots (`LABLET_CML_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
    /// After CML refuses a login, how long the same credentials are not tried again
    /// (`LABLET_CML_LOGIN_BACKOFF`); new credentials are tried at once.
    pub login_backoff: Duration,
}

impl Default for CmlClientSettings {
    fn default() -> Self {
        CmlClientSettings {
            call_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            read_retries: 2,
            retry_backoff: Duration::from_millis(200),
            breaker: BreakerSettings::default(),
            ca_bundle: None,
            login_backoff: Duration::from_secs(15 * 60),
        }
    }
}

/// Builds the shared HTTP client, verifying certificates or (`insecure`) not.
fn http_client(settings: &CmlClientSettings, insecure: bool) -> Result<reqwest::Client, String> {
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(settings.connect_timeout)
        .user_agent(concat!("lablet/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &settings.ca_bundle {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("{}: no PEM certificate in the file", path.display()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Hands out one [`HttpCmlClient`] per worker, made with the worker's credentials from the vault.
pub struct HttpCmlConnector {
    verifying: reqwest::Client,
    insecure: reqwest::Client,
    vault: Arc<dyn CredentialVault>,
    settings: CmlClientSettings,
    clients: Mutex<HashMap<Uuid, (CmlTarget, Arc<HttpCmlClient>)>>,
}

impl HttpCmlConnector {
    /// Fails when the CA bundle cannot be read.
    pub fn new(settings: CmlClientSettings, vault: Arc<dyn CredentialVault>) -> Result<Self, String> {
        Ok(HttpCmlConnector {
            verifying: http_client(&settings, false)?,
            insecure: http_client(&settings, true)?,
            vault,
            settings,
            clients: Mutex::default(),
        })
    }

    fn cached(&self, target: &CmlTarget) -> Option<Arc<HttpCmlClient>> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .get(&target.worker_id)
            .filter(|(known, _)| known == target)
            .map(|(_, client)| client.clone())
    }
}

#[async_trait]
impl CmlConnector for HttpCmlConnector {
    async fn client(&self, target: &CmlTarget) -> Result<Arc<dyn CmlClient>, CmlError> {
        if let Some(client) = self.cached(target) {
            return Ok(client);
        }
        lablet_domain::worker::check_endpoint(&target.endpoint).map_err(CmlError::BadEndpoint)?;
        let credentials = self
            .vault
            .load(target.worker_id)
            .await
            .map_err(|e| CmlError::Unreachable(e.to_string()))?
            .ok_or(CmlError::NoCredentials)?;
        let http = if target.insecure_tls {
            self.insecure.clone()
        } else {
            self.verifying.clone()
        };
        let client = Arc::new(HttpCmlClient::new(
            http,
            &target.endpoint,
            credentials,
            self.settings.clone(),
        ));
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.insert(target.worker_id, (target.clone(), client.clone()));
        Ok(client)
    }
}
