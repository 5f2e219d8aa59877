//! The facts a LabletDefinition stream holds. A version's content is stored as plain values:
//! the rules that built it valid ran when the command was made.

use super::values::{PortSpec, Resources};
use crate::worker::LicenseType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One version's content, as it was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionContent {
    pub artifact_uri: String,
    pub topology_sha256: String,
    pub resources: Resources,
    /// Licenses it runs under; empty means any.
    pub license_affinity: Vec<LicenseType>,
    pub node_count: u32,
    pub ports: Vec<PortSpec>,
    pub grading_rules_uri: Option<String>,
    pub max_duration_minutes: u32,
    pub warm_pool_depth: u32,
}

crate::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum LabletDefinitionEvent {
        "lablet_definition.created" => Created {
            name: String,
            created_by: String,
            created_at: DateTime<Utc>,
        },
        /// A new version, waiting for its artifact to be synced.
        "lablet_definition.version_added" => VersionAdded {
            version: String,
            #[serde(flatten)]
            content: VersionContent,
            added_by: String,
            added_at: DateTime<Utc>,
        },
        /// The artifact was fetched, its SHA-256 and node count matched: the version takes
        /// new instances.
        "lablet_definition.version_activated" => VersionActivated {
            version: String,
            activated_at: DateTime<Utc>,
        },
        /// The artifact could not be fetched or did not match; the version stays pending.
        "lablet_definition.version_sync_failed" => VersionSyncFailed {
            version: String,
            reason: String,
            failed_at: DateTime<Utc>,
        },
        /// The version takes no new instances; running ones go on.
        "lablet_definition.version_deprecated" => VersionDeprecated {
            version: String,
            reason: String,
            deprecated_by: String,
            deprecated_at: DateTime<Utc>,
        },
        /// Out of service for a while: no new instances until reactivated.
        "lablet_definition.version_deactivated" => VersionDeactivated {
            version: String,
            deactivated_by: String,
            deactivated_at: DateTime<Utc>,
        },
        "lablet_definition.version_reactivated" => VersionReactivated {
            version: String,
            reactivated_by: String,
            reactivated_at: DateTime<Utc>,
        },
        "lablet_definition.version_archived" => VersionArchived {
            version: String,
            archived_by: String,
            archived_at: DateTime<Utc>,
        },
    }
}
