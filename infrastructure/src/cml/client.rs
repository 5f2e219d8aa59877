//! The HTTP client of one CML server.
//!
//! It authenticates with the worker's credentials and keeps the token; a 401 makes it
//! authenticate once more and repeat the call once. Every call has a timeout; reads are retried
//! with exponential backoff when the server could not be reached or answered 5xx/429 (a timeout
//! is not retried: a hanging server would only hang again). Failures that are the server's feed
//! the worker's circuit breaker; answers about the request (4xx) do not.

use super::breaker::CircuitBreaker;
use super::wire;
use super::CmlClientSettings;
use async_trait::async_trait;
use lablet_application::ports::cml::{
    CmlImport, CmlLab, CmlLicensing, CmlSystemHealth, CmlSystemInformation, CmlSystemStats, CmlTelemetryEvent,
    LabAction,
};
use lablet_application::ports::{CmlClient, CmlCredentials, CmlError};
use reqwest::Method;
use std::time::Instant;

/// Whether a call only reads (and may therefore be retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// One request to CML: method, path under `/api/v0`, query and JSON body.
#[derive(Clone, Copy)]
struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a [(&'a str, &'a str)],
    body: Option<&'a serde_json::Value>,
}

impl<'a> Call<'a> {
    fn new(method: &'a Method, path: &'a str) -> Self {
        Call {
            method,
            path,
            query: &[],
            body: None,
        }
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

pub struct HttpCmlClient {
    http: reqwest::Client,
    /// `<endpoint>/api/v0`
    api: String,
    credentials: CmlCredentials,
    token: tokio::sync::Mutex<Option<String>>,
    /// Until when a login is not tried again after CML refused these credentials.
    refused_until: std::sync::Mutex<Option<Instant>>,
    breaker: CircuitBreaker,
    settings: CmlClientSettings,
}

impl HttpCmlClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: &str,
        credentials: CmlCredentials,
        settings: CmlClientSettings,
    ) -> Self {
        HttpCmlClient {
            http,
            api: format!("{}/api/v0", endpoint.trim_end_matches('/')),
            credentials,
            token: tokio::sync::Mutex::new(None),
            refused_until: std::sync::Mutex::new(None),
            breaker: CircuitBreaker::new(settings.breaker),
            settings,
        }
    }

    fn timeout_error(&self) -> CmlError {
        CmlError::Timeout {
            timeout_ms: self.settings.call_timeout.as_millis() as u64,
        }
    }

    /// One request, no retry, no re-authentication.
    async fn send_once(&self, call: Call<'_>, token: Option<&str>) -> Result<Answer, CmlError> {
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.api, call.path))
            .timeout(self.settings.call_timeout);
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                self.timeout_error()
            } else {
                // Without the URL: it is known to the caller, and errors end up in logs.
                let cause = tls_cause(&e).map(|cause| format!(": {cause}")).unwrap_or_default();
                CmlError::Unreachable(format!("{}{cause}", e.without_url()))
            }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer { status, body })
    }

    /// The wait left before these credentials may be tried again, if CML refused them.
    fn refusal_left(&self) -> Option<std::time::Duration> {
        let mut refused = match self.refused_until.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let until = (*refused)?;
        let left = until.checked_duration_since(Instant::now());
        if left.is_none() {
            *refused = None;
        }
        left
    }

    fn refuse_for_a_while(&self) {
        let mut refused = match self.refused_until.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *refused = Some(Instant::now() + self.settings.login_backoff);
    }

    /// Logs in, unless CML refused these credentials within the login backoff.
    async fn authenticate(&self) -> Result<String, CmlError> {
        if let Some(left) = self.refusal_left() {
            return Err(CmlError::CredentialsRefused {
                retry_in_ms: left.as_millis() as u64,
            });
        }
        let body = serde_json::json!({
            "username": self.credentials.username,
            "password": self.credentials.password,
        });
        let call = Call {
            body: Some(&body),
            ..Call::new(&Method::POST, "/authenticate")
        };
        let answer = self.send_once(call, None).await?;
        match answer.status {
            200 => wire::token(&answer.body),
            401 | 403 => {
                tracing::warn!(
                    status = answer.status,
                    backoff_s = self.settings.login_backoff.as_secs(),
                    "CML refused the worker's credentials; not trying them again for the backoff"
                );
                self.refuse_for_a_while();
                Err(CmlError::AuthenticationFailed(answer.status))
            }
            status => Err(status_error(status, &answer.body)),
        }
    }

    /// The kept token, or a new one.
    async fn token(&self) -> Result<String, CmlError> {
        let mut token = self.token.lock().await;
        if let Some(token) = token.as_ref() {
            return Ok(token.clone());
        }
        let fresh = self.authenticate().await?;
        *token = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `stale` unless another call already replaced it.
    async fn forget(&self, stale: &str) {
        let mut token = self.token.lock().await;
        if token.as_deref() == Some(stale) {
            *token = None;
        }
    }

    /// An authenticated request; a 401 re-authenticates once and repeats it once.
    async fn send_authenticated(&self, call: Call<'_>) -> Result<Answer, CmlError> {
        let token = self.token().await?;
        let answer = self.send_once(call, Some(&token)).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        self.forget(&token).await;
        let token = self.token().await?;
        self.send_once(call, Some(&token)).await
    }

    /// A call through the breaker, with retries for reads.
    async fn call(&self, call: Call<'_>, kind: Kind, authenticated: bool) -> Result<Vec<u8>, CmlError> {
        self.breaker
            .admit(Instant::now())
            .map_err(|wait| CmlError::CircuitOpen {
                retry_in_ms: wait.as_millis() as u64,
            })?;
        let attempts = match kind {
            Kind::Read => 1 + self.settings.read_retries,
            Kind::Write => 1,
        };
        let mut attempt = 0;
        let error = loop {
            let result = if authenticated {
                self.send_authenticated(call).await
            } else {
                self.send_once(call, None).await
            };
            let error = match result {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    self.breaker.succeeded();
                    return Ok(answer.body);
                }
                Ok(answer) => status_error(answer.status, &answer.body),
                Err(error) => error,
            };
            attempt += 1;
            if attempt >= attempts || !retryable(&error) {
                break error;
            }
            tokio::time::sleep(self.settings.retry_backoff * 2u32.pow(attempt - 1)).await;
        };
        if error.is_answer() || error.is_refused_login() {
            self.breaker.succeeded();
        } else {
            self.breaker.failed(Instant::now());
        }
        Err(error)
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, CmlError> {
        self.call(Call::new(&Method::GET, path), Kind::Read, true).await
    }
}

fn status_error(status: u16, body: &[u8]) -> CmlError {
    CmlError::Status {
        status,
        description: wire::error_description(body),
    }
}

/// What a TLS failure under a transport error was, in words an operator can act on, found by
/// walking the error's causes to the TLS library's own error.
fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(describe_tls(tls));
        }
        // An I/O error's `source` skips the error it wraps; step into it instead.
        next = match current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let what = match error {
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => {
            "the server's certificate is signed by an unknown issuer (trust its CA with LABLET_CML_CA_BUNDLE, or mark the worker insecure_tls)".to_owned()
        }
        rustls::Error::InvalidCertificate(Cert::NotValidForName)
        | rustls::Error::InvalidCertificate(Cert::NotValidForNameContext { .. }) => {
            "the server's certificate does not name this endpoint's host".to_owned()
        }
        rustls::Error::InvalidCertificate(Cert::Expired) | rustls::Error::InvalidCertificate(Cert::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_owned()
        }
        rustls::Error::InvalidCertificate(Cert::NotValidYet)
        | rustls::Error::InvalidCertificate(Cert::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet".to_owned()
        }
        other => format!("TLS failed: {other}"),
    };
    format!("certificate verification failed: {what}")
}

fn retryable(error: &CmlError) -> bool {
    match error {
        CmlError::Unreachable(_) => true,
        CmlError::Status { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

/// A lab id as a path segment: CML ids are UUIDs; anything else is refused before it is sent.
fn lab_path(id: &str) -> Result<String, CmlError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(CmlError::Malformed(format!("lab id {id:?} is not a CML id")));
    }
    Ok(format!("/labs/{id}"))
}

#[async_trait]
impl CmlClient for HttpCmlClient {
    async fn system_information(&self) -> Result<CmlSystemInformation, CmlError> {
        let information = Call::new(&Method::GET, "/system_information");
        let body = self.call(information, Kind::Read, false).await?;
        wire::system_information(&body)
    }

    async fn system_health(&self) -> Result<CmlSystemHealth, CmlError> {
        wire::system_health(&self.read("/system_health").await?)
    }

    async fn system_stats(&self) -> Result<CmlSystemStats, CmlError> {
        wire::system_stats(&self.read("/system_stats").await?)
    }

    async fn licensing(&self) -> Result<CmlLicensing, CmlError> {
        wire::licensing(&self.read("/licensing").await?)
    }

    async fn lab_ids(&self) -> Result<Vec<String>, CmlError> {
        wire::lab_ids(&self.read("/labs?show_all=true").await?)
    }

    async fn lab(&self, id: &str) -> Result<CmlLab, CmlError> {
        wire::lab(&self.read(&lab_path(id)?).await?)
    }

    async fn lab_action(&self, id: &str, action: LabAction) -> Result<(), CmlError> {
        let path = format!("{}/{}", lab_path(id)?, action.as_str());
        self.call(Call::new(&Method::PUT, &path), Kind::Write, true)
            .await
            .map(drop)
    }

    async fn delete_lab(&self, id: &str) -> Result<(), CmlError> {
        self.call(Call::new(&Method::DELETE, &lab_path(id)?), Kind::Write, true)
            .await
            .map(drop)
    }

    async fn download_lab(&self, id: &str) -> Result<String, CmlError> {
        wire::topology(&self.read(&format!("{}/download", lab_path(id)?)).await?)
    }

    async fn import_lab(&self, topology: &serde_json::Value, title: Option<&str>) -> Result<CmlImport, CmlError> {
        let query: Vec<(&str, &str)> = title.map(|t| ("title", t)).into_iter().collect();
        let call = Call {
            query: &query,
            body: Some(topology),
            ..Call::new(&Method::POST, "/import")
        };
        wire::import(&self.call(call, Kind::Write, true).await?)
    }

    async fn telemetry_events(&self) -> Result<Vec<CmlTelemetryEvent>, CmlError> {
        wire::telemetry_events(&self.read("/telemetry/events").await?)
    }
}
