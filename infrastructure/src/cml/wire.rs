//! CML's JSON, as its OpenAPI document describes it, read into the port's types.
//!
//! Reading is lenient where CML is known to vary (missing optional fields, nulls, timestamps
//! with or without an offset) and strict where Lablet depends on a value (a lab needs an id and
//! a state).

use chrono::{DateTime, NaiveDateTime, Utc};
use lablet_application::ports::cml::{
    CmlImport, CmlLab, CmlLicensing, CmlSystemHealth, CmlSystemInformation, CmlSystemStats, CmlTelemetryEvent,
};
use lablet_application::ports::CmlError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn malformed(what: &str, err: impl std::fmt::Display) -> CmlError {
    CmlError::Malformed(format!("{what}: {err}"))
}

fn parse<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, CmlError> {
    serde_json::from_slice(body).map_err(|e| malformed(what, e))
}

/// A CML timestamp: RFC 3339, or without an offset (then UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// The body of `POST /authenticate`: the token as a JSON string.
pub fn token(body: &[u8]) -> Result<String, CmlError> {
    let token: String = parse("authenticate", body)?;
    if token.is_empty() {
        return Err(malformed("authenticate", "empty token"));
    }
    Ok(token)
}

/// CML's error body, when an answer is one.
pub fn error_description(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        description: Option<String>,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|e| e.description)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

pub fn system_information(body: &[u8]) -> Result<CmlSystemInformation, CmlError> {
    #[derive(Deserialize)]
    struct Wire {
        version: String,
        #[serde(default)]
        ready: bool,
    }
    let wire: Wire = parse("system_information", body)?;
    Ok(CmlSystemInformation {
        version: wire.version,
        ready: wire.ready,
    })
}

pub fn system_health(body: &[u8]) -> Result<CmlSystemHealth, CmlError> {
    #[derive(Deserialize)]
    struct Wire {
        valid: Option<bool>,
        is_licensed: Option<bool>,
        #[serde(default)]
        is_enterprise: bool,
    }
    let wire: Wire = parse("system_health", body)?;
    Ok(CmlSystemHealth {
        valid: wire.valid.unwrap_or(false),
        is_licensed: wire.is_licensed.unwrap_or(false),
        is_enterprise: wire.is_enterprise,
    })
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    used: f64,
    #[serde(default)]
    total: f64,
}

impl Usage {
    fn percent(&self) -> f64 {
        if self.total > 0.0 {
            (self.used / self.total * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        }
    }
}

pub fn system_stats(body: &[u8]) -> Result<CmlSystemStats, CmlError> {
    #[derive(Deserialize, Default)]
    struct Cpu {
        #[serde(default)]
        percent: f64,
    }
    #[derive(Deserialize)]
    struct All {
        #[serde(default)]
        cpu: Cpu,
        #[serde(default)]
        memory: Usage,
        #[serde(default)]
        disk: Usage,
    }
    #[derive(Deserialize, Default)]
    struct DomInfo {
        running_nodes: Option<u32>,
    }
    #[derive(Deserialize, Default)]
    struct HostStats {
        #[serde(default)]
        dominfo: DomInfo,
    }
    #[derive(Deserialize)]
    struct Compute {
        #[serde(default)]
        stats: HostStats,
    }
    #[derive(Deserialize)]
    struct Wire {
        all: All,
        #[serde(default)]
        computes: BTreeMap<String, Compute>,
    }
    let wire: Wire = parse("system_stats", body)?;
    Ok(CmlSystemStats {
        cpu_percent: wire.all.cpu.percent.clamp(0.0, 100.0),
        memory_percent: wire.all.memory.percent(),
        disk_percent: wire.all.disk.percent(),
        running_nodes: wire
            .computes
            .values()
            .filter_map(|c| c.stats.dominfo.running_nodes)
            .sum(),
    })
}

pub fn licensing(body: &[u8]) -> Result<CmlLicensing, CmlError> {
    #[derive(Deserialize, Default)]
    struct Status {
        status: Option<String>,
        expires: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct Product {
        active: Option<String>,
        #[serde(default)]
        is_enterprise: bool,
    }
    #[derive(Deserialize)]
    struct Wire {
        #[serde(default)]
        registration: Status,
        #[serde(default)]
        authorization: Status,
        #[serde(default)]
        product_license: Product,
    }
    let wire: Wire = parse("licensing", body)?;
    let expires_at = [&wire.registration.expires, &wire.authorization.expires]
        .into_iter()
        .filter_map(|t| t.as_deref().and_then(parse_time))
        .min();
    Ok(CmlLicensing {
        registration_status: wire.registration.status.unwrap_or_default(),
        authorization_status: wire.authorization.status.unwrap_or_default(),
        product_license: wire.product_license.active,
        is_enterprise: wire.product_license.is_enterprise,
        expires_at,
    })
}

pub fn lab_ids(body: &[u8]) -> Result<Vec<String>, CmlError> {
    parse("labs", body)
}

pub fn lab(body: &[u8]) -> Result<CmlLab, CmlError> {
    #[derive(Deserialize)]
    struct Group {
        id: Option<String>,
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Wire {
        id: String,
        state: String,
        lab_title: Option<String>,
        lab_description: Option<String>,
        lab_notes: Option<String>,
        owner_username: Option<String>,
        owner_fullname: Option<String>,
        node_count: Option<u32>,
        link_count: Option<u32>,
        groups: Option<Vec<Group>>,
        created: Option<String>,
        modified: Option<String>,
    }
    let wire: Wire = parse("lab", body)?;
    Ok(CmlLab {
        id: wire.id,
        title: wire.lab_title.unwrap_or_default(),
        description: wire.lab_description.unwrap_or_default(),
        notes: wire.lab_notes.unwrap_or_default(),
        state: wire.state,
        owner_username: wire.owner_username.unwrap_or_default(),
        owner_fullname: wire.owner_fullname.unwrap_or_default(),
        node_count: wire.node_count.unwrap_or(0),
        link_count: wire.link_count.unwrap_or(0),
        groups: wire
            .groups
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.name.or(g.id))
            .collect(),
        created: wire.created.as_deref().and_then(parse_time),
        modified: wire.modified.as_deref().and_then(parse_time),
    })
}

/// `GET /labs/{id}/download`: the topology YAML as a JSON string.
pub fn topology(body: &[u8]) -> Result<String, CmlError> {
    parse("lab download", body)
}

/// `POST /import`: `{id, warnings}`.
pub fn import(body: &[u8]) -> Result<CmlImport, CmlError> {
    #[derive(Deserialize)]
    struct Wire {
        id: String,
        warnings: Option<Vec<String>>,
    }
    let wire: Wire = parse("import", body)?;
    Ok(CmlImport {
        id: wire.id,
        warnings: wire.warnings.unwrap_or_default(),
    })
}

pub fn telemetry_events(body: &[u8]) -> Result<Vec<CmlTelemetryEvent>, CmlError> {
    #[derive(Deserialize)]
    struct Wire {
        category: String,
        timestamp: String,
        #[serde(default)]
        data: Map<String, Value>,
    }
    let wire: Vec<Wire> = parse("telemetry events", body)?;
    let text = |data: &Map<String, Value>, key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(wire
        .into_iter()
        .filter_map(|event| {
            Some(CmlTelemetryEvent {
                timestamp: parse_time(&event.timestamp)?,
                user_id: text(&event.data, "user_id"),
                lab_id: text(&event.data, "lab_id"),
                category: event.category,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn timestamps_with_and_without_offset_are_utc() {
        assert_eq!(
            parse_time("2021-02-28T07:33:47+02:00").unwrap().to_rfc3339(),
            "2021-02-28T05:33:47+00:00"
        );
        assert_eq!(
            parse_time("2021-02-28T07:33:47.250").unwrap().to_rfc3339(),
            "2021-02-28T07:33:47.250+00:00"
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn a_lab_reads_with_cml_field_names_and_group_names() {
        let lab = lab(&bytes(json!({
            "id": "90f84e38-a71c-4d57-8d90-00fa8a197385", "state": "STARTED",
            "lab_title": "CCNA", "lab_description": null, "owner_username": "admin",
            "node_count": 4, "link_count": 3, "effective_permissions": ["lab_admin"],
            "groups": [{"id": "g1", "permission": "read_only", "name": "students"}, {"id": "g2", "permission": "read_write"}],
            "created": "2021-02-28T07:33:47+00:00", "modified": "2021-03-01T07:33:47+00:00"
        })))
        .unwrap();
        assert_eq!(lab.title, "CCNA");
        assert_eq!(lab.description, "");
        assert_eq!(lab.groups, vec!["students", "g2"]);
        assert_eq!(lab.node_count, 4);
        assert_eq!(lab.modified.unwrap().to_rfc3339(), "2021-03-01T07:33:47+00:00");
        assert!(super::lab(&bytes(json!({"lab_title": "no id"}))).is_err());
    }

    #[test]
    fn stats_are_percentages_of_all_computes_and_running_nodes_summed() {
        let stats = system_stats(&bytes(json!({
            "all": {"cpu": {"count": 8, "percent": 42.5}, "memory": {"used": 25.0, "free": 75.0, "total": 100.0},
                    "disk": {"used": 1.0, "free": 3.0, "total": 4.0}},
            "computes": {
                "a": {"hostname": "a", "is_controller": true, "stats": {"dominfo": {"running_nodes": 3, "allocated_cpus": 1, "allocated_memory": 1}}},
                "b": {"hostname": "b", "is_controller": false, "stats": {"dominfo": {"running_nodes": null, "allocated_cpus": 0, "allocated_memory": 0}}}
            },
            "controller": {"disk": {"used": 1.0, "free": 3.0, "total": 4.0}}
        })))
        .unwrap();
        assert_eq!(stats.cpu_percent, 42.5);
        assert_eq!(stats.memory_percent, 25.0);
        assert_eq!(stats.disk_percent, 25.0);
        assert_eq!(stats.running_nodes, 3);
    }

    #[test]
    fn licensing_takes_the_earliest_expiry() {
        let licensing = licensing(&bytes(json!({
            "registration": {"status": "COMPLETED", "expires": "2027-01-01T00:00:00+00:00"},
            "authorization": {"status": "IN_COMPLIANCE", "expires": "2026-06-01T00:00:00+00:00"},
            "product_license": {"active": "CML_Personal", "is_enterprise": false}
        })))
        .unwrap();
        assert_eq!(licensing.product_license.as_deref(), Some("CML_Personal"));
        assert_eq!(licensing.expires_at.unwrap().to_rfc3339(), "2026-06-01T00:00:00+00:00");
    }

    #[test]
    fn telemetry_events_keep_user_and_lab_and_drop_unreadable_times() {
        let events = telemetry_events(&bytes(json!([
            {"category": "start_lab", "timestamp": "2026-01-01T10:00:00+00:00", "data": {"user_id": "u1", "lab_id": "l1"}},
            {"category": "system_stats", "timestamp": "garbage", "data": {}}
        ])))
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].user_id.as_deref(), Some("u1"));
        assert_eq!(events[0].lab_id.as_deref(), Some("l1"));
    }

    #[test]
    fn the_token_is_a_json_string_and_errors_carry_their_description() {
        assert_eq!(token(br#""a.b.c""#).unwrap(), "a.b.c");
        assert!(token(br#"{"token": "a"}"#).is_err());
        assert_eq!(
            error_description(br#"{"code": 404, "description": "Lab not found"}"#),
            "Lab not found"
        );
        assert_eq!(error_description(b"plain"), "plain");
        assert_eq!(topology(br#""lab:\n  title: x\n""#).unwrap(), "lab:\n  title: x\n");
        let imported = import(br#"{"id": "90f84e38-a71c-4d57-8d90-00fa8a197385", "warnings": null}"#).unwrap();
        assert!(imported.warnings.is_empty());
    }
}
