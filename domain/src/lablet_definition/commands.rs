//! What can be asked of a LabletDefinition.

use super::values::DEFAULT_MAX_DURATION;
use super::values::{ArtifactUri, MaxDuration, NodeCount, PortSpec, Resources, SemVer, Sha256Hex, WarmPoolDepth};
use crate::kernel::Command;
use crate::values::{FreeText, Name};
use crate::worker::LicenseType;
use serde::Deserialize;

/// The content of one version, every value checked (it is also the body the API reads).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    pub artifact_uri: ArtifactUri,
    pub topology_sha256: Sha256Hex,
    pub resources: Resources,
    /// Licenses it runs under; empty (the default) means any.
    #[serde(default)]
    pub license_affinity: Vec<LicenseType>,
    pub node_count: NodeCount,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub grading_rules_uri: Option<ArtifactUri>,
    /// 1–480, 60 when absent.
    #[serde(default = "default_max_duration")]
    pub max_duration_minutes: MaxDuration,
    /// 0–10, 0 when absent.
    #[serde(default = "no_warm_pool")]
    pub warm_pool_depth: WarmPoolDepth,
}

fn default_max_duration() -> MaxDuration {
    DEFAULT_MAX_DURATION
}

fn no_warm_pool() -> WarmPoolDepth {
    WarmPoolDepth::new_const(0)
}

/// What fetching a version's artifact found.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    /// The artifact was read: its SHA-256 and the nodes its topology declares.
    Fetched { sha256: String, node_count: u32 },
    /// It could not be read or parsed.
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabletDefinitionCommand {
    /// A new definition with its first version.
    Create {
        name: Name<128>,
        version: SemVer,
        spec: VersionSpec,
    },
    /// The next version: greater than every version the definition has.
    AddVersion {
        version: SemVer,
        spec: VersionSpec,
    },
    /// Records an artifact sync of a pending version; a match activates it and deprecates the
    /// version that was active.
    RecordSync {
        version: SemVer,
        outcome: SyncOutcome,
    },
    Deprecate {
        version: SemVer,
        reason: FreeText<1024>,
    },
    Archive {
        version: SemVer,
    },
    /// Takes an active version out of service for a while: no new instances until it is
    /// reactivated.
    Deactivate {
        version: SemVer,
    },
    /// Puts an inactive version back in service, if no other version is active.
    Reactivate {
        version: SemVer,
    },
}

impl Command for LabletDefinitionCommand {
    fn name(&self) -> &'static str {
        match self {
            LabletDefinitionCommand::Create { .. } => "lablet_definition.create",
            LabletDefinitionCommand::AddVersion { .. } => "lablet_definition.add_version",
            LabletDefinitionCommand::RecordSync { .. } => "lablet_definition.record_sync",
            LabletDefinitionCommand::Deprecate { .. } => "lablet_definition.deprecate",
            LabletDefinitionCommand::Archive { .. } => "lablet_definition.archive",
            LabletDefinitionCommand::Deactivate { .. } => "lablet_definition.deactivate",
            LabletDefinitionCommand::Reactivate { .. } => "lablet_definition.reactivate",
        }
    }
}
