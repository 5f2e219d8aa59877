//! The CML port: what Lablet asks of a CML server, in Lablet's words.
//!
//! The adapter (`lablet-infrastructure::cml`) speaks CML's HTTP API: it authenticates, keeps and
//! renews the token, retries reads, times calls out and isolates a dead worker behind a circuit
//! breaker. Jobs see only these calls and their typed answers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// Where a worker's CML answers, and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmlTarget {
    pub worker_id: Uuid,
    /// Base URL of the server (`https://cml-1.example.net`); `/api/v0` is appended.
    pub endpoint: String,
    /// Do not verify the server's TLS certificate (self-signed CML servers).
    pub insecure_tls: bool,
    /// When the worker's credentials were last replaced: a client made with older ones is
    /// made again.
    pub credentials_changed_at: Option<DateTime<Utc>>,
}

/// `GET /system_information`.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlSystemInformation {
    pub version: String,
    pub ready: bool,
}

/// `GET /system_health`, reduced to what Lablet uses.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlSystemHealth {
    pub valid: bool,
    pub is_licensed: bool,
    pub is_enterprise: bool,
}

/// `GET /system_stats`, totals of all computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CmlSystemStats {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub running_nodes: u32,
}

/// `GET /licensing`, reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlLicensing {
    pub registration_status: String,
    pub authorization_status: String,
    /// The active product license (`CML_Enterprise`, `CML_Personal` …).
    pub product_license: Option<String>,
    pub is_enterprise: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `GET /labs/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlLab {
    pub id: String,
    pub title: String,
    pub description: String,
    pub notes: String,
    pub state: String,
    pub owner_username: String,
    pub owner_fullname: String,
    pub node_count: u32,
    pub link_count: u32,
    /// Group names (ids where CML gives no name).
    pub groups: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
}

/// One of `GET /telemetry/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlTelemetryEvent {
    pub category: String,
    pub timestamp: DateTime<Utc>,
    pub user_id: Option<String>,
    pub lab_id: Option<String>,
}

/// `POST /import`: the new lab's id and CML's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct CmlImport {
    pub id: String,
    pub warnings: Vec<String>,
}

/// An action on a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabAction {
    Start,
    Stop,
    Wipe,
}

impl LabAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LabAction::Start => "start",
            LabAction::Stop => "stop",
            LabAction::Wipe => "wipe",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmlError {
    /// Recent calls failed; the worker is not asked again until the breaker lets a trial through.
    #[error("worker isolated after repeated failures; next trial in {retry_in_ms} ms")]
    CircuitOpen { retry_in_ms: u64 },
    #[error("CML did not answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("CML unreachable: {0}")]
    Unreachable(String),
    #[error("CML refused the credentials (status {0})")]
    AuthenticationFailed(u16),
    /// CML refused these credentials recently: Lablet does not try them again (servers lock
    /// accounts after failed logins) until they change or the backoff passes.
    #[error("CML refused these credentials; not tried again for {retry_in_ms} ms or until they are replaced")]
    CredentialsRefused { retry_in_ms: u64 },
    #[error("no CML credentials are stored for this worker")]
    NoCredentials,
    #[error("CML answered {status}: {description}")]
    Status { status: u16, description: String },
    #[error("CML answered something Lablet cannot read: {0}")]
    Malformed(String),
    #[error("the worker's endpoint is unusable: {0}")]
    BadEndpoint(String),
}

impl CmlError {
    /// Whether the error says the worker's credentials are wrong.
    pub fn is_refused_login(&self) -> bool {
        matches!(
            self,
            CmlError::AuthenticationFailed(_) | CmlError::CredentialsRefused { .. }
        )
    }

    /// Whether the call reached a server that answered as CML does (a 4xx about the request
    /// itself); such answers do not count against the worker's health.
    pub fn is_answer(&self) -> bool {
        matches!(self, CmlError::Status { status, .. } if (400..500).contains(status) && *status != 429)
    }
}

/// The calls Lablet makes on one worker.
#[async_trait]
pub trait CmlClient: Send + Sync {
    async fn system_information(&self) -> Result<CmlSystemInformation, CmlError>;
    async fn system_health(&self) -> Result<CmlSystemHealth, CmlError>;
    async fn system_stats(&self) -> Result<CmlSystemStats, CmlError>;
    async fn licensing(&self) -> Result<CmlLicensing, CmlError>;
    /// The ids of every lab on the server (`show_all=true`).
    async fn lab_ids(&self) -> Result<Vec<String>, CmlError>;
    async fn lab(&self, id: &str) -> Result<CmlLab, CmlError>;
    async fn lab_action(&self, id: &str, action: LabAction) -> Result<(), CmlError>;
    async fn delete_lab(&self, id: &str) -> Result<(), CmlError>;
    /// The lab's topology, as the YAML text CML exports.
    async fn download_lab(&self, id: &str) -> Result<String, CmlError>;
    /// Creates a lab from a topology (CML's `Topology` JSON object), titled `title` if given.
    async fn import_lab(&self, topology: &serde_json::Value, title: Option<&str>) -> Result<CmlImport, CmlError>;
    async fn telemetry_events(&self) -> Result<Vec<CmlTelemetryEvent>, CmlError>;
}

/// Hands out the client of a worker (one per worker, so its token and breaker persist).
#[async_trait]
pub trait CmlConnector: Send + Sync {
    async fn client(&self, target: &CmlTarget) -> Result<Arc<dyn CmlClient>, CmlError>;
}
