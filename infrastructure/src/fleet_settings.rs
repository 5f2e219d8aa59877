//! Settings of the fleet jobs and of the CML client.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LABLET_LABS_REFRESH_INTERVAL` | `30m` | time between labs refreshes |
//! | `LABLET_LABS_REFRESH_CONCURRENCY` | `5` | workers refreshed at once |
//! | `LABLET_MONITORING_INTERVAL` | `5m` | time between monitoring passes |
//! | `LABLET_IDLE_TIMEOUT` | `60m` | quiet time after which a worker is idle |
//! | `LABLET_IDLE_SNOOZE` | `60m` | no idle report this long after a resume |
//! | `LABLET_FLEET_JOBS` | `on` | `off`: no refresh nor monitoring runs |
//! | `LABLET_CML_TIMEOUT` | `15s` | longest wait for one CML call |
//! | `LABLET_CML_RETRIES` | `2` | extra attempts of a failed read |
//! | `LABLET_CML_CA_BUNDLE` | none | PEM file of extra trusted CAs |
//! | `LABLET_CML_LOGIN_BACKOFF` | `15m` | after a refused login, how long the same credentials wait |
//!
//! Durations are a number with a unit: `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).

use crate::cml::CmlClientSettings;
use crate::config::ConfigError;
use lablet_application::fleet::FleetSettings;
use std::path::PathBuf;
use std::time::Duration;

/// `500ms`, `30s`, `5m`, `1h`, or seconds; at least one millisecond.
pub fn parse_duration(setting: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let bad = || ConfigError {
        setting,
        message: format!("`{text}` is not a duration such as 500ms, 30s, 5m or 1h"),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(ConfigError {
            setting,
            message: "must be longer than zero".into(),
        });
    }
    Ok(duration)
}

fn minutes(setting: &'static str, duration: Duration) -> Result<chrono::Duration, ConfigError> {
    let minutes = duration.as_secs() / 60;
    if minutes == 0 {
        return Err(ConfigError {
            setting,
            message: "must be at least one minute".into(),
        });
    }
    Ok(chrono::Duration::minutes(minutes as i64))
}

fn count(setting: &'static str, text: &str, min: u32) -> Result<u32, ConfigError> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(ConfigError {
            setting,
            message: format!("`{text}` is not a whole number of at least {min}"),
        }),
    }
}

/// The fleet jobs' and CML client's settings from `lookup`.
pub fn from_lookup(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(FleetSettings, CmlClientSettings), ConfigError> {
    let mut fleet = FleetSettings::default();
    let mut cml = CmlClientSettings::default();
    if let Some(text) = lookup("LABLET_LABS_REFRESH_INTERVAL") {
        fleet.labs_refresh_interval = parse_duration("LABLET_LABS_REFRESH_INTERVAL", &text)?;
    }
    if let Some(text) = lookup("LABLET_LABS_REFRESH_CONCURRENCY") {
        fleet.refresh_concurrency = count("LABLET_LABS_REFRESH_CONCURRENCY", &text, 1)? as usize;
    }
    if let Some(text) = lookup("LABLET_MONITORING_INTERVAL") {
        fleet.monitoring_interval = parse_duration("LABLET_MONITORING_INTERVAL", &text)?;
    }
    if let Some(text) = lookup("LABLET_IDLE_TIMEOUT") {
        fleet.idle_policy.timeout = minutes("LABLET_IDLE_TIMEOUT", parse_duration("LABLET_IDLE_TIMEOUT", &text)?)?;
    }
    if let Some(text) = lookup("LABLET_IDLE_SNOOZE") {
        fleet.idle_policy.snooze_after_resume =
            minutes("LABLET_IDLE_SNOOZE", parse_duration("LABLET_IDLE_SNOOZE", &text)?)?;
    }
    if let Some(text) = lookup("LABLET_FLEET_JOBS") {
        fleet.enabled = match text.trim() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => {
                return Err(ConfigError {
                    setting: "LABLET_FLEET_JOBS",
                    message: format!("`{text}` is not on or off"),
                })
            }
        };
    }
    if let Some(text) = lookup("LABLET_CML_TIMEOUT") {
        cml.call_timeout = parse_duration("LABLET_CML_TIMEOUT", &text)?;
    }
    if let Some(text) = lookup("LABLET_CML_LOGIN_BACKOFF") {
        cml.login_backoff = parse_duration("LABLET_CML_LOGIN_BACKOFF", &text)?;
    }
    if let Some(text) = lookup("LABLET_CML_RETRIES") {
        cml.read_retries = count("LABLET_CML_RETRIES", &text, 0)?;
    }
    if let Some(path) = lookup("LABLET_CML_CA_BUNDLE").filter(|p| !p.trim().is_empty()) {
        let path = PathBuf::from(path.trim());
        if !path.is_file() {
            return Err(ConfigError {
                setting: "LABLET_CML_CA_BUNDLE",
                message: format!("{} is not a readable file", path.display()),
            });
        }
        cml.ca_bundle = Some(path);
    }
    Ok((fleet, cml))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<(FleetSettings, CmlClientSettings), ConfigError> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        from_lookup(&|name| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("X", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("X", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("X", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("X", "2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("X", "0s").is_err());
        assert!(parse_duration("X", "soon").is_err());
        assert!(parse_duration("X", "5 days").is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let (fleet, cml) = settings(&[]).unwrap();
        assert_eq!(fleet.labs_refresh_interval, Duration::from_secs(1800));
        assert_eq!(fleet.refresh_concurrency, 5);
        assert_eq!(fleet.idle_policy.timeout, chrono::Duration::minutes(60));
        assert_eq!(cml.read_retries, 2);
        let (fleet, cml) = settings(&[
            ("LABLET_LABS_REFRESH_INTERVAL", "10m"),
            ("LABLET_IDLE_TIMEOUT", "2h"),
            ("LABLET_FLEET_JOBS", "off"),
            ("LABLET_CML_TIMEOUT", "3s"),
        ])
        .unwrap();
        assert_eq!(fleet.labs_refresh_interval, Duration::from_secs(600));
        assert_eq!(fleet.idle_policy.timeout, chrono::Duration::minutes(120));
        assert!(!fleet.enabled);
        assert_eq!(cml.call_timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (name, value) in [
            ("LABLET_LABS_REFRESH_INTERVAL", "often"),
            ("LABLET_LABS_REFRESH_CONCURRENCY", "0"),
            ("LABLET_IDLE_TIMEOUT", "30s"),
            ("LABLET_FLEET_JOBS", "maybe"),
            ("LABLET_CML_CA_BUNDLE", "/no/such/file.pem"),
        ] {
            assert_eq!(settings(&[(name, value)]).unwrap_err().setting, name);
        }
    }
}
