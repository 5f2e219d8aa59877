//! Configuration: every setting has a default that works on one machine with no servers, and an
//! environment variable `LABLET_<SECTION>_<NAME>` overrides it. A bad value fails at start with a
//! message naming the setting, never later in a request.

use crate::cloudevents::HttpMode;
use lablet_application::outbox::RelaySettings;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

/// Where a store lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `sqlite://<path>`: a file, created on first use.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: a database, migrated by `lablet migrate`.
    Postgres(String),
    /// `mongodb://…`: a database for read models (not for the event log).
    Mongo(String),
    /// `kurrentdb://…` or `esdb://…`: a KurrentDB / EventStoreDB log (not for read models).
    Kurrent(String),
}

impl StoreLocation {
    /// Parses a store URL for the setting `setting`.
    pub fn parse(setting: &'static str, url: &str) -> Result<Self, ConfigError> {
        let error = |message: String| ConfigError { setting, message };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            error(format!(
                "`{url}` is not a URL; expected for example sqlite://./data/lablet.db"
            ))
        })?;
        match scheme {
            "sqlite" if !rest.is_empty() => Ok(StoreLocation::Sqlite(PathBuf::from(rest))),
            "sqlite" => Err(error(
                "a sqlite URL needs a file path, e.g. sqlite://./data/lablet.db".into(),
            )),
            "postgres" | "postgresql" => crate::postgres::PostgresTarget::parse(url)
                .map(|_| StoreLocation::Postgres(url.to_owned()))
                .map_err(|e| error(e.to_string())),
            "mongodb" | "mongodb+srv" if setting == "LABLET_EVENT_STORE_URL" => Err(error(
                "MongoDB keeps read models, not the event log; use sqlite:// or postgres:// here".into(),
            )),
            "mongodb" | "mongodb+srv" => crate::mongo::check_url(url)
                .map(|_| StoreLocation::Mongo(url.to_owned()))
                .map_err(|e| error(e.to_string())),
            "kurrentdb" | "kurrentdb+discover" | "esdb" | "esdb+discover"
                if setting == "LABLET_READ_MODEL_URL" =>
            {
                Err(error(
                    "KurrentDB keeps the event log, not read models; use sqlite://, postgres:// or mongodb:// here"
                        .into(),
                ))
            }
            "kurrentdb" | "kurrentdb+discover" | "esdb" | "esdb+discover" => crate::kurrentdb::KurrentTarget::parse(url)
                .map(|_| StoreLocation::Kurrent(url.to_owned()))
                .map_err(error),
            other => Err(error(format!(
                "unknown store scheme `{other}`; supported: sqlite, postgres, kurrentdb/esdb (event log), mongodb (read models)"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `LABLET_DATA_DIR`, default `./data`.
    pub data_dir: PathBuf,
    /// `LABLET_EVENT_STORE_URL`, default `sqlite://<data_dir>/lablet.db`.
    pub event_store: StoreLocation,
    /// `LABLET_READ_MODEL_URL`, default `sqlite://<data_dir>/read_models.db`.
    pub read_models: StoreLocation,
    /// `LABLET_HTTP_ADDR`, default `127.0.0.1:8080`.
    pub http_addr: SocketAddr,
    /// `LABLET_QUERY_MAX_WAIT_MS`: how long a read-your-writes query waits, default 5000.
    pub query_max_wait: Duration,
    /// `LABLET_COMMAND_MAX_ATTEMPTS`: runs of a command on version conflicts, default 5.
    pub command_max_attempts: u32,
    /// `LABLET_CLOUDEVENTS_*` and `LABLET_OUTBOX_*`: where Lablet's events go.
    pub outbox: OutboxSettings,
    /// `LABLET_HTTP_*`: limits every request shares.
    pub http_limits: HttpLimits,
    /// `LABLET_AUTH_*`: how callers are authenticated.
    pub auth: crate::auth_settings::AuthSettings,
    /// `LABLET_SECRET_KEY`: the key secrets at rest are sealed with; unset, it is made in the
    /// data directory (see [`crate::secrets`]).
    pub secret_key: Option<crate::secrets::SecretKeyText>,
    /// `LABLET_LABS_REFRESH_*`, `LABLET_MONITORING_INTERVAL`, `LABLET_IDLE_*`: the fleet jobs
    /// (see [`crate::fleet_settings`]).
    pub fleet: lablet_application::fleet::FleetSettings,
    /// `LABLET_CML_*`: how CML servers are called.
    pub cml: crate::cml::CmlClientSettings,
    /// `LABLET_LEASE_TTL_MS` (10000) and `LABLET_LEASE_RENEW_MS` (3000): how long a replica
    /// holds a singleton role without renewing it, and how often it renews.
    pub leases: lablet_application::leadership::LeaseSettings,
    /// `LABLET_DEFINITION_SYNC_INTERVAL_MS` (10000): how often versions pending their artifact
    /// sync are looked for.
    pub definition_sync_interval: Duration,
    /// `LABLET_WORKER_TEMPLATES`: a YAML file of worker templates seeded at start (created if
    /// missing, never overwritten); none by default.
    pub worker_templates: Option<PathBuf>,
    /// `LABLET_SCHEDULER_INTERVAL_MS` (5000), `LABLET_SCHEDULER_LEAD_MINUTES` (35) and
    /// `LABLET_SCHEDULER_EXPIRE_MINUTES` (5): how often pending instances are placed, how long
    /// before their timeslot, and how long after its start one still pending is expired.
    pub scheduler: lablet_application::scheduling::SchedulerSettings,
    /// `LABLET_WORK_ORDER_TICK_MS` (1000): how often expired work-order leases are failed and
    /// due retries put back to pending.
    pub work_order_tick: Duration,
    /// `LABLET_EXECUTORS` (4; 0 switches them off) and `LABLET_EXECUTOR_LEASE_SECONDS` (60): how
    /// many orders the built-in executors of this replica run at once, and the lease they take.
    pub executors: lablet_application::executors::ExecutorSettings,
    /// `LABLET_LIFECYCLE` (true), `LABLET_LIFECYCLE_INTERVAL_MS` (1000) and
    /// `LABLET_GRADING_TIMEOUT_MINUTES` (30): whether placed instances are moved through their
    /// life by Lablet (off, only by hand through their transitions), how often
    /// the lifecycle moves instances on, and how long after a timeslot's end a grading result is
    /// waited for. Its lead time is the scheduler's.
    pub lifecycle: lablet_application::lifecycle::LifecycleSettings,
}

/// Limits every HTTP request shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// `LABLET_HTTP_BODY_LIMIT_BYTES`, default 1 MiB.
    pub body_limit: usize,
    /// `LABLET_HTTP_REQUEST_TIMEOUT_MS`, default 30000.
    pub request_timeout: Duration,
    /// `LABLET_HTTP_MAX_IN_FLIGHT`: requests handled at once before more are shed, default 1024.
    pub max_in_flight: usize,
    /// `LABLET_HTTP_CORS_ORIGINS`: comma-separated origins allowed by CORS; none by default.
    pub cors_origins: Vec<String>,
    /// `LABLET_SHUTDOWN_DRAIN_MS`: after SIGTERM or SIGINT, how long Lablet keeps serving
    /// while it says it is going (readiness 503, `Connection: close` on every answer) before it
    /// stops accepting connections, default 1000.
    pub shutdown_drain: Duration,
    /// `LABLET_SHUTDOWN_GRACE_MS`: then how long requests in flight may finish, and then how
    /// long the background tasks may commit, default 20000 each.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_in_flight: 1024,
            cors_origins: Vec::new(),
            shutdown_drain: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

impl HttpLimits {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut limits = HttpLimits::default();
        if let Some(bytes) = lookup("LABLET_HTTP_BODY_LIMIT_BYTES") {
            limits.body_limit = positive("LABLET_HTTP_BODY_LIMIT_BYTES", &bytes)?;
        }
        if let Some(ms) = lookup("LABLET_HTTP_REQUEST_TIMEOUT_MS") {
            limits.request_timeout = Duration::from_millis(positive("LABLET_HTTP_REQUEST_TIMEOUT_MS", &ms)?);
        }
        if let Some(ms) = lookup("LABLET_SHUTDOWN_DRAIN_MS") {
            limits.shutdown_drain = Duration::from_millis(parse("LABLET_SHUTDOWN_DRAIN_MS", &ms, "milliseconds")?);
        }
        if let Some(ms) = lookup("LABLET_SHUTDOWN_GRACE_MS") {
            limits.shutdown_grace = Duration::from_millis(positive("LABLET_SHUTDOWN_GRACE_MS", &ms)?);
        }
        if let Some(n) = lookup("LABLET_HTTP_MAX_IN_FLIGHT") {
            limits.max_in_flight = positive("LABLET_HTTP_MAX_IN_FLIGHT", &n)?;
        }
        if let Some(origins) = lookup("LABLET_HTTP_CORS_ORIGINS") {
            for origin in origins.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let valid = reqwest::Url::parse(origin).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.path() == "/"
                        && url.query().is_none()
                        && !origin.ends_with('/')
                });
                if !valid {
                    return Err(ConfigError {
                        setting: "LABLET_HTTP_CORS_ORIGINS",
                        message: format!("`{origin}` is not an origin such as https://lab.example.com"),
                    });
                }
                limits.cors_origins.push(origin.to_owned());
            }
        }
        Ok(limits)
    }
}

/// The outbox relays: one per configured sink, none by default.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSettings {
    /// `LABLET_CLOUDEVENTS_SOURCE`, default `/lablet`.
    pub source: String,
    /// `LABLET_CLOUDEVENTS_SINK_URL` and `LABLET_CLOUDEVENTS_SINK_MODE` (`binary`, the default,
    /// or `structured`).
    pub http: Option<(reqwest::Url, HttpMode)>,
    /// `LABLET_CLOUDEVENTS_NATS_URL`.
    pub nats: Option<NatsSettings>,
    /// `LABLET_OUTBOX_MAX_ATTEMPTS` (8), `LABLET_OUTBOX_RETRY_BASE_MS` (500),
    /// `LABLET_OUTBOX_RETRY_MAX_MS` (60000), `LABLET_OUTBOX_CONCURRENCY` (16).
    pub relay: RelaySettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    pub url: String,
    /// `LABLET_CLOUDEVENTS_NATS_STREAM`, default `LABLET`.
    pub stream: String,
    /// `LABLET_CLOUDEVENTS_NATS_SUBJECT_PREFIX`, default `lablet`.
    pub subject_prefix: String,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            source: "/lablet".into(),
            http: None,
            nats: None,
            relay: RelaySettings::default(),
        }
    }
}

impl OutboxSettings {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut outbox = OutboxSettings::default();
        if let Some(source) = lookup("LABLET_CLOUDEVENTS_SOURCE") {
            if source.trim().is_empty() {
                return Err(ConfigError {
                    setting: "LABLET_CLOUDEVENTS_SOURCE",
                    message: "must not be empty".into(),
                });
            }
            outbox.source = source;
        }
        if let Some(url) = lookup("LABLET_CLOUDEVENTS_SINK_URL").filter(|u| !u.trim().is_empty()) {
            let url = reqwest::Url::parse(url.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| ConfigError {
                    setting: "LABLET_CLOUDEVENTS_SINK_URL",
                    message: format!("`{url}` is not an http:// or https:// URL"),
                })?;
            let mode = match lookup("LABLET_CLOUDEVENTS_SINK_MODE").as_deref().map(str::trim) {
                None | Some("binary") => HttpMode::Binary,
                Some("structured") => HttpMode::Structured,
                Some(other) => {
                    return Err(ConfigError {
                        setting: "LABLET_CLOUDEVENTS_SINK_MODE",
                        message: format!("`{other}` is not binary or structured"),
                    })
                }
            };
            outbox.http = Some((url, mode));
        }
        if let Some(url) = lookup("LABLET_CLOUDEVENTS_NATS_URL").filter(|u| !u.trim().is_empty()) {
            let named = |setting: &'static str, default: &str| -> Result<String, ConfigError> {
                let value = lookup(setting).unwrap_or_else(|| default.to_owned());
                let valid =
                    !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if valid {
                    Ok(value)
                } else {
                    Err(ConfigError {
                        setting,
                        message: format!("`{value}` must be letters, digits, `_` or `-`"),
                    })
                }
            };
            outbox.nats = Some(NatsSettings {
                url: url.trim().to_owned(),
                stream: named("LABLET_CLOUDEVENTS_NATS_STREAM", "LABLET")?,
                subject_prefix: named("LABLET_CLOUDEVENTS_NATS_SUBJECT_PREFIX", "lablet")?,
            });
        }
        let relay = &mut outbox.relay;
        if let Some(n) = lookup("LABLET_OUTBOX_MAX_ATTEMPTS") {
            relay.max_attempts = positive("LABLET_OUTBOX_MAX_ATTEMPTS", &n)?;
        }
        if let Some(ms) = lookup("LABLET_OUTBOX_RETRY_BASE_MS") {
            relay.retry_base = Duration::from_millis(positive("LABLET_OUTBOX_RETRY_BASE_MS", &ms)?);
        }
        if let Some(ms) = lookup("LABLET_OUTBOX_RETRY_MAX_MS") {
            relay.retry_cap = Duration::from_millis(positive("LABLET_OUTBOX_RETRY_MAX_MS", &ms)?);
        }
        if let Some(n) = lookup("LABLET_OUTBOX_CONCURRENCY") {
            relay.concurrency = positive("LABLET_OUTBOX_CONCURRENCY", &n)?;
        }
        Ok(outbox)
    }
}

/// `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`), in any case.
pub(crate) fn boolean(setting: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(ConfigError {
            setting,
            message: format!("`{other}` is not true or false"),
        }),
    }
}

/// A number of at least 1.
fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(
    setting: &'static str,
    value: &str,
) -> Result<T, ConfigError> {
    let n: T = parse(setting, value, "a positive integer")?;
    if n < T::from(1) {
        return Err(ConfigError {
            setting,
            message: "must be at least 1".into(),
        });
    }
    Ok(n)
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings with every default, in `data_dir`.
    pub fn defaults_in(data_dir: &Path) -> Self {
        Settings {
            data_dir: data_dir.to_owned(),
            event_store: StoreLocation::Sqlite(data_dir.join("lablet.db")),
            read_models: StoreLocation::Sqlite(data_dir.join("read_models.db")),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            query_max_wait: Duration::from_secs(5),
            command_max_attempts: 5,
            outbox: OutboxSettings::default(),
            http_limits: HttpLimits::default(),
            auth: crate::auth_settings::AuthSettings::defaults_in(data_dir),
            secret_key: None,
            fleet: lablet_application::fleet::FleetSettings::default(),
            cml: crate::cml::CmlClientSettings::default(),
            leases: lablet_application::leadership::LeaseSettings::default(),
            definition_sync_interval: lablet_application::definitions::DEFAULT_SYNC_INTERVAL,
            worker_templates: None,
            scheduler: lablet_application::scheduling::SchedulerSettings::default(),
            work_order_tick: Duration::from_secs(1),
            executors: lablet_application::executors::ExecutorSettings::default(),
            lifecycle: lablet_application::lifecycle::LifecycleSettings::default(),
        }
    }

    /// Settings from any variable source (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(lookup("LABLET_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let mut settings = Settings::defaults_in(&data_dir);
        if let Some(url) = lookup("LABLET_EVENT_STORE_URL") {
            settings.event_store = StoreLocation::parse("LABLET_EVENT_STORE_URL", &url)?;
        }
        if let Some(url) = lookup("LABLET_READ_MODEL_URL") {
            settings.read_models = StoreLocation::parse("LABLET_READ_MODEL_URL", &url)?;
        }
        if let Some(key) = lookup("LABLET_SECRET_KEY").filter(|key| !key.trim().is_empty()) {
            settings.secret_key = Some(crate::secrets::SecretKeyText::parse(&key).map_err(|e| ConfigError {
                setting: "LABLET_SECRET_KEY",
                message: match e {
                    crate::secrets::SecretsError::BadKey(why) => why,
                    other => other.to_string(),
                },
            })?);
        }
        if let Some(addr) = lookup("LABLET_HTTP_ADDR") {
            settings.http_addr = parse("LABLET_HTTP_ADDR", &addr, "an address such as 127.0.0.1:8080")?;
        }
        if let Some(ms) = lookup("LABLET_QUERY_MAX_WAIT_MS") {
            settings.query_max_wait = Duration::from_millis(parse("LABLET_QUERY_MAX_WAIT_MS", &ms, "milliseconds")?);
        }
        if let Some(n) = lookup("LABLET_COMMAND_MAX_ATTEMPTS") {
            settings.command_max_attempts = positive("LABLET_COMMAND_MAX_ATTEMPTS", &n)?;
        }
        settings.outbox = OutboxSettings::from_lookup(&lookup)?;
        settings.http_limits = HttpLimits::from_lookup(&lookup)?;
        settings.auth = crate::auth_settings::AuthSettings::from_lookup(&data_dir, &lookup)?;
        (settings.fleet, settings.cml) = crate::fleet_settings::from_lookup(&lookup)?;
        if let Some(ms) = lookup("LABLET_LEASE_TTL_MS") {
            settings.leases.ttl = Duration::from_millis(positive("LABLET_LEASE_TTL_MS", &ms)?);
        }
        if let Some(ms) = lookup("LABLET_LEASE_RENEW_MS") {
            settings.leases.renew_every = Duration::from_millis(positive("LABLET_LEASE_RENEW_MS", &ms)?);
        }
        if let Some(ms) = lookup("LABLET_DEFINITION_SYNC_INTERVAL_MS") {
            settings.definition_sync_interval =
                Duration::from_millis(positive("LABLET_DEFINITION_SYNC_INTERVAL_MS", &ms)?);
        }
        if let Some(ms) = lookup("LABLET_SCHEDULER_INTERVAL_MS") {
            settings.scheduler.every = Duration::from_millis(positive("LABLET_SCHEDULER_INTERVAL_MS", &ms)?);
        }
        if let Some(minutes) = lookup("LABLET_SCHEDULER_LEAD_MINUTES") {
            let minutes: u64 = parse("LABLET_SCHEDULER_LEAD_MINUTES", &minutes, "minutes")?;
            settings.scheduler.lead_time = Duration::from_secs(minutes * 60);
        }
        if let Some(minutes) = lookup("LABLET_SCHEDULER_EXPIRE_MINUTES") {
            let minutes: u64 = parse("LABLET_SCHEDULER_EXPIRE_MINUTES", &minutes, "minutes")?;
            settings.scheduler.expire_after = Duration::from_secs(minutes * 60);
        }
        if let Some(ms) = lookup("LABLET_WORK_ORDER_TICK_MS") {
            settings.work_order_tick = Duration::from_millis(positive("LABLET_WORK_ORDER_TICK_MS", &ms)?);
        }
        if let Some(count) = lookup("LABLET_EXECUTORS") {
            settings.executors.concurrency = parse("LABLET_EXECUTORS", &count, "a number of executors")?;
        }
        if let Some(seconds) = lookup("LABLET_EXECUTOR_LEASE_SECONDS") {
            settings.executors.lease_seconds = positive("LABLET_EXECUTOR_LEASE_SECONDS", &seconds)?;
            if settings.executors.lease_seconds > 3600 {
                return Err(ConfigError {
                    setting: "LABLET_EXECUTOR_LEASE_SECONDS",
                    message: "must be at most 3600".into(),
                });
            }
        }
        if let Some(on) = lookup("LABLET_LIFECYCLE") {
            settings.lifecycle.enabled = boolean("LABLET_LIFECYCLE", &on)?;
        }
        if let Some(ms) = lookup("LABLET_LIFECYCLE_INTERVAL_MS") {
            settings.lifecycle.every = Duration::from_millis(positive("LABLET_LIFECYCLE_INTERVAL_MS", &ms)?);
        }
        if let Some(minutes) = lookup("LABLET_GRADING_TIMEOUT_MINUTES") {
            let minutes: u64 = parse("LABLET_GRADING_TIMEOUT_MINUTES", &minutes, "minutes")?;
            settings.lifecycle.grading_timeout = Duration::from_secs(minutes * 60);
        }
        settings.worker_templates = lookup("LABLET_WORKER_TEMPLATES")
            .filter(|path| !path.trim().is_empty())
            .map(PathBuf::from);
        if settings.leases.renew_every >= settings.leases.ttl {
            return Err(ConfigError {
                setting: "LABLET_LEASE_RENEW_MS",
                message: "must be shorter than LABLET_LEASE_TTL_MS, or leases lapse between renewals".into(),
            });
        }
        Ok(settings)
    }
}

fn parse<T: std::str::FromStr>(setting: &'static str, value: &str, expected: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError {
        setting,
        message: format!("`{value}` is not {expected}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.event_store, StoreLocation::Sqlite(PathBuf::from("./data/lablet.db")));
        assert_eq!(
            s.read_models,
            StoreLocation::Sqlite(PathBuf::from("./data/read_models.db"))
        );
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn data_dir_moves_the_default_files() {
        let s = settings(&[("LABLET_DATA_DIR", "/var/lib/lablet")]).unwrap();
        assert_eq!(
            s.event_store,
            StoreLocation::Sqlite(PathBuf::from("/var/lib/lablet/lablet.db"))
        );
    }

    #[test]
    fn bad_values_name_their_setting() {
        let err = settings(&[("LABLET_EVENT_STORE_URL", "ftp://x")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_EVENT_STORE_URL");
        let err = settings(&[("LABLET_READ_MODEL_URL", "nonsense")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_READ_MODEL_URL");
        let err = settings(&[("LABLET_HTTP_ADDR", "here")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_HTTP_ADDR");
        let err = settings(&[("LABLET_SECRET_KEY", "c2hvcnQ")]).unwrap_err();
        assert_eq!(
            (err.setting, err.message.as_str()),
            ("LABLET_SECRET_KEY", "must be 32 bytes, not 5")
        );
        assert!(!format!("{err:?}").contains("c2hvcnQ"), "the key text never prints");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let configured = settings(&[("LABLET_SECRET_KEY", key)]).unwrap();
        assert!(configured.secret_key.is_some());
        assert!(!format!("{configured:?}").contains(key), "settings never print the key");
        let err = settings(&[("LABLET_COMMAND_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_COMMAND_MAX_ATTEMPTS");
        let err = settings(&[("LABLET_CLOUDEVENTS_SINK_URL", "ftp://sink")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_CLOUDEVENTS_SINK_URL");
        let err = settings(&[
            ("LABLET_CLOUDEVENTS_SINK_URL", "http://sink"),
            ("LABLET_CLOUDEVENTS_SINK_MODE", "batch"),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "LABLET_CLOUDEVENTS_SINK_MODE");
        let err = settings(&[
            ("LABLET_CLOUDEVENTS_NATS_URL", "nats://x"),
            ("LABLET_CLOUDEVENTS_NATS_STREAM", "a.b"),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "LABLET_CLOUDEVENTS_NATS_STREAM");
        let err = settings(&[("LABLET_OUTBOX_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_OUTBOX_MAX_ATTEMPTS");
        let err = settings(&[("LABLET_HTTP_BODY_LIMIT_BYTES", "-1")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_HTTP_BODY_LIMIT_BYTES");
        let err = settings(&[("LABLET_HTTP_CORS_ORIGINS", "https://ok.example, not an origin")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_HTTP_CORS_ORIGINS");
        let s = settings(&[("LABLET_HTTP_CORS_ORIGINS", "https://a.example, http://localhost:3000")]).unwrap();
        assert_eq!(
            s.http_limits.cors_origins,
            vec!["https://a.example", "http://localhost:3000"]
        );
    }

    #[test]
    fn the_outbox_is_off_until_a_sink_is_configured() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.outbox.http, None);
        assert_eq!(s.outbox.nats, None);
        let s = settings(&[
            ("LABLET_CLOUDEVENTS_SINK_URL", "http://127.0.0.1:9000/events"),
            ("LABLET_CLOUDEVENTS_SINK_MODE", "structured"),
            ("LABLET_CLOUDEVENTS_NATS_URL", "nats://127.0.0.1:4222"),
            ("LABLET_OUTBOX_RETRY_BASE_MS", "20"),
        ])
        .unwrap();
        let (url, mode) = s.outbox.http.unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/events");
        assert_eq!(mode, HttpMode::Structured);
        let nats = s.outbox.nats.unwrap();
        assert_eq!(
            (nats.stream.as_str(), nats.subject_prefix.as_str()),
            ("LABLET", "lablet")
        );
        assert_eq!(s.outbox.relay.retry_base, Duration::from_millis(20));
    }
}
