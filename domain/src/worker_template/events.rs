//! The facts a WorkerTemplate stream holds.

use crate::worker::{Capacity, LicenseType, PortRange};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A template's content as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateContent {
    pub instance_type: String,
    /// The machine image a worker boots: a name pattern (`cml-2.9-*`) or an id.
    pub image_pattern: String,
    pub declared_capacity: Capacity,
    pub license_type: LicenseType,
    pub port_range: PortRange,
    pub drain_timeout_minutes: u32,
    /// US dollars per hour.
    pub hourly_cost: f64,
    pub region: Option<String>,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum WorkerTemplateEvent {
        "worker_template.defined" => Defined {
            name: String,
            #[serde(flatten)]
            content: TemplateContent,
            enabled: bool,
            defined_by: String,
            defined_at: DateTime<Utc>,
        },
        "worker_template.changed" => Changed {
            #[serde(flatten)]
            content: TemplateContent,
            changed_by: String,
            changed_at: DateTime<Utc>,
        },
        "worker_template.enabled" => Enabled { by: String, at: DateTime<Utc> },
        "worker_template.disabled" => Disabled { by: String, at: DateTime<Utc> },
    }
}
