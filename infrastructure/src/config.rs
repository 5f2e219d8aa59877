//! Configuration: every setting has a default that works on one machine with no servers, and an
//! environment variable `LABLET_<SECTION>_<NAME>` overrides it. A bad value fails at start with a
//! message naming the setting, never later in a request.

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
            "postgres" | "postgresql" | "mongodb" | "kurrentdb" | "esdb" => Err(error(format!(
                "the {scheme} adapter is not part of this build; use sqlite://"
            ))),
            other => Err(error(format!("unknown store scheme `{other}`; supported: sqlite"))),
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
        if let Some(addr) = lookup("LABLET_HTTP_ADDR") {
            settings.http_addr = parse("LABLET_HTTP_ADDR", &addr, "an address such as 127.0.0.1:8080")?;
        }
        if let Some(ms) = lookup("LABLET_QUERY_MAX_WAIT_MS") {
            settings.query_max_wait = Duration::from_millis(parse("LABLET_QUERY_MAX_WAIT_MS", &ms, "milliseconds")?);
        }
        if let Some(n) = lookup("LABLET_COMMAND_MAX_ATTEMPTS") {
            settings.command_max_attempts = parse("LABLET_COMMAND_MAX_ATTEMPTS", &n, "a positive integer")?;
            if settings.command_max_attempts == 0 {
                return Err(ConfigError {
                    setting: "LABLET_COMMAND_MAX_ATTEMPTS",
                    message: "must be at least 1".into(),
                });
            }
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
        let err = settings(&[("LABLET_COMMAND_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(err.setting, "LABLET_COMMAND_MAX_ATTEMPTS");
    }
}
