//! What the simulator holds: its labs, tokens, faults, telemetry and call counts.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// How a simulated CML server introduces itself.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub username: String,
    pub password: String,
    pub version: String,
    /// How long a token from `/authenticate` is accepted.
    pub token_ttl: Duration,
    /// The active product license (`CML_Enterprise`, `CML_Personal`, `CML_Eval` …).
    pub product_license: String,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            username: "admin".into(),
            password: "admin-password".into(),
            version: "2.9.0+build.12".into(),
            token_ttl: Duration::hours(8),
            product_license: "CML_Enterprise".into(),
        }
    }
}

/// A lab to add; absent fields take CML's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSeed {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub notes: String,
    pub state: Option<String>,
    pub owner_username: Option<String>,
    #[serde(default)]
    pub owner_fullname: String,
    #[serde(default)]
    pub node_count: u32,
    #[serde(default)]
    pub link_count: u32,
    /// Group names; each gets a stable id.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A change to a lab through the control API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub state: Option<String>,
    pub owner_username: Option<String>,
    pub owner_fullname: Option<String>,
    pub node_count: Option<u32>,
    pub link_count: Option<u32>,
    pub groups: Option<Vec<String>>,
}

/// Makes matching CML calls fail with `fail_status`, never answer (`hang`), or answer after
/// `delay_ms` (then the calls delayed at once are counted: see `/_control/in-flight`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Calls whose path starts with this (`/api/v0/system_stats`); every CML call when absent.
    pub path_prefix: Option<String>,
    pub fail_status: Option<u16>,
    #[serde(default)]
    pub hang: bool,
    pub delay_ms: Option<u64>,
}

/// The figures `/system_stats` reports.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub running_nodes: u32,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            cpu_percent: 12.5,
            memory_percent: 35.0,
            disk_percent: 20.0,
            running_nodes: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimLab {
    pub id: String,
    pub title: String,
    pub description: String,
    pub notes: String,
    pub state: String,
    pub owner_id: String,
    pub owner_username: String,
    pub owner_fullname: String,
    pub node_count: u32,
    pub link_count: u32,
    pub groups: Vec<String>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

pub struct SimState {
    pub config: SimulatorConfig,
    pub admin_id: String,
    /// In creation order, as CML lists them.
    pub labs: Vec<SimLab>,
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub faults: Vec<Fault>,
    pub telemetry: Vec<Value>,
    pub figures: Figures,
    /// When the simulated license registration expires (fixed, as on a real server).
    pub license_expires: DateTime<Utc>,
    /// `METHOD path` of each CML call received → count.
    pub calls: BTreeMap<String, u64>,
    /// Calls held by a delay fault now, and the most there ever were at once.
    pub delayed_in_flight: u32,
    pub delayed_max_in_flight: u32,
}

/// CML's timestamp form: `2021-02-28T07:33:47+00:00`.
pub fn cml_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// A stable UUID4-shaped id for a group name.
pub fn group_id(name: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, b) in name.bytes().enumerate() {
        bytes[i % 16] = bytes[i % 16].wrapping_mul(31).wrapping_add(b);
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[derive(Clone)]
pub struct Shared(Arc<Mutex<SimState>>);

impl Shared {
    pub fn new(config: SimulatorConfig) -> Self {
        Shared(Arc::new(Mutex::new(SimState {
            config,
            admin_id: Uuid::new_v4().to_string(),
            labs: Vec::new(),
            tokens: HashMap::new(),
            faults: Vec::new(),
            telemetry: Vec::new(),
            figures: Figures::default(),
            license_expires: Utc::now() + Duration::days(365),
            calls: BTreeMap::new(),
            delayed_in_flight: 0,
            delayed_max_in_flight: 0,
        })))
    }

    /// The state; a panic while holding it cannot leave it half-changed in ways that matter to a
    /// simulator, so a poisoned lock is simply taken over.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn add_lab(&self, seed: LabSeed) -> String {
        let mut state = self.lock();
        let now = Utc::now();
        let id = Uuid::new_v4().to_string();
        let owner_username = seed.owner_username.unwrap_or_else(|| state.config.username.clone());
        let lab = SimLab {
            id: id.clone(),
            title: seed.title,
            description: seed.description,
            notes: seed.notes,
            state: seed.state.unwrap_or_else(|| "DEFINED_ON_CORE".into()),
            owner_id: state.admin_id.clone(),
            owner_username,
            owner_fullname: seed.owner_fullname,
            node_count: seed.node_count,
            link_count: seed.link_count,
            groups: seed.groups,
            created: now,
            modified: now,
        };
        let admin = state.admin_id.clone();
        state.record_telemetry("import_lab", &admin, Some(&id));
        state.labs.push(lab);
        id
    }
}

impl SimState {
    pub fn delayed_started(&mut self) {
        self.delayed_in_flight += 1;
        self.delayed_max_in_flight = self.delayed_max_in_flight.max(self.delayed_in_flight);
    }

    pub fn delayed_finished(&mut self) {
        self.delayed_in_flight = self.delayed_in_flight.saturating_sub(1);
    }

    pub fn lab_mut(&mut self, id: &str) -> Option<&mut SimLab> {
        self.labs.iter_mut().find(|lab| lab.id == id)
    }

    /// Appends a telemetry event as CML records one.
    pub fn record_telemetry(&mut self, category: &str, user_id: &str, lab_id: Option<&str>) {
        self.telemetry.push(json!({
            "category": category,
            "timestamp": cml_time(Utc::now()),
            "data": {"user_id": user_id, "lab_id": lab_id},
        }));
    }

    pub fn apply_change(&mut self, id: &str, change: LabChange) -> bool {
        let Some(lab) = self.lab_mut(id) else {
            return false;
        };
        macro_rules! set {
            ($field:ident) => {
                if let Some(value) = change.$field {
                    lab.$field = value;
                }
            };
        }
        set!(title);
        set!(description);
        set!(notes);
        set!(state);
        set!(owner_username);
        set!(owner_fullname);
        set!(node_count);
        set!(link_count);
        set!(groups);
        lab.modified = Utc::now();
        true
    }
}
