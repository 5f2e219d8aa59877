//! LabletDefinition state, decisions and the fold of its events.

use super::commands::{LabletDefinitionCommand, SyncOutcome, VersionSpec};
use super::events::{LabletDefinitionEvent, VersionContent};
use super::values::SemVer;
use crate::kernel::{Aggregate, DecisionContext, DomainError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The namespace of definition ids: a definition's id is the UUIDv5 of its name, so creating a
/// name twice addresses one stream and is refused as already existing.
const DEFINITION_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_626c_6574_2d64_6566_696e_6974_696f);

/// The id of the definition named `name`.
pub fn definition_id(name: &str) -> Uuid {
    Uuid::new_v5(&DEFINITION_NAMESPACE, name.as_bytes())
}

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Added; its artifact is not synced (or the last sync failed).
    PendingSync,
    /// Takes new instances.
    Active,
    Inactive,
    /// Takes no new instances; running ones go on.
    Deprecated,
    Archived,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::PendingSync => "pending_sync",
            VersionStatus::Active => "active",
            VersionStatus::Inactive => "inactive",
            VersionStatus::Deprecated => "deprecated",
            VersionStatus::Archived => "archived",
        }
    }
}

impl std::str::FromStr for VersionStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const ALL: [VersionStatus; 5] = [
            VersionStatus::PendingSync,
            VersionStatus::Active,
            VersionStatus::Inactive,
            VersionStatus::Deprecated,
            VersionStatus::Archived,
        ];
        ALL.into_iter().find(|status| status.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|s| s.as_str()).collect();
            format!("must be one of {}", names.join(", "))
        })
    }
}

/// One version as the stream tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionState {
    pub content: VersionContent,
    pub status: VersionStatus,
    /// Why the last sync failed, while it stays pending.
    pub sync_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LabletDefinition {
    pub exists: bool,
    pub name: String,
    pub versions: BTreeMap<SemVer, VersionState>,
}

impl LabletDefinition {
    /// The version that takes new instances, if any.
    pub fn active_version(&self) -> Option<(&SemVer, &VersionState)> {
        self.versions.iter().find(|(_, v)| v.status == VersionStatus::Active)
    }

    fn version(&self, version: &SemVer) -> Result<&VersionState, DomainError> {
        self.versions
            .get(version)
            .ok_or_else(|| DomainError::RuleViolated(format!("{} has no version {version}", self.name)))
    }

    fn invalid(&self, version: &SemVer, from: VersionStatus, to: VersionStatus) -> DomainError {
        DomainError::InvalidTransition {
            aggregate: Self::KIND.name(),
            from: format!("{version} {}", from.as_str()),
            to: to.as_str().to_owned(),
        }
    }

    fn record_sync(
        &self,
        version: &SemVer,
        outcome: &SyncOutcome,
        context: &DecisionContext,
    ) -> Result<Vec<LabletDefinitionEvent>, DomainError> {
        let state = self.version(version)?;
        let at = context.now;
        match state.status {
            VersionStatus::PendingSync => {}
            VersionStatus::Active if matches!(outcome, SyncOutcome::Fetched { .. }) => return Ok(Vec::new()),
            other => return Err(self.invalid(version, other, VersionStatus::Active)),
        }
        let failure = match outcome {
            SyncOutcome::Failed { reason } => Some(reason.clone()),
            SyncOutcome::Fetched { sha256, .. } if *sha256 != state.content.topology_sha256 => Some(format!(
                "the artifact's SHA-256 is {sha256}, not {}",
                state.content.topology_sha256
            )),
            SyncOutcome::Fetched { node_count, .. } if *node_count != state.content.node_count => Some(format!(
                "the topology has {node_count} nodes, not {}",
                state.content.node_count
            )),
            SyncOutcome::Fetched { .. } => None,
        };
        if let Some(reason) = failure {
            // A sync retried with the same result records nothing new.
            if state.sync_error.as_deref() == Some(reason.as_str()) {
                return Ok(Vec::new());
            }
            return Ok(vec![LabletDefinitionEvent::VersionSyncFailed {
                version: version.to_string(),
                reason,
                failed_at: at,
            }]);
        }
        match self.active_version() {
            // A newer version went active while this one waited: it never takes instances.
            Some((active, _)) if active > version => Ok(vec![LabletDefinitionEvent::VersionDeprecated {
                version: version.to_string(),
                reason: format!("superseded by {active} before its artifact was synced"),
                deprecated_by: context.actor.clone(),
                deprecated_at: at,
            }]),
            active => {
                let mut events = vec![LabletDefinitionEvent::VersionActivated {
                    version: version.to_string(),
                    activated_at: at,
                }];
                if let Some((previous, _)) = active {
                    events.push(LabletDefinitionEvent::VersionDeprecated {
                        version: previous.to_string(),
                        reason: format!("superseded by {version}"),
                        deprecated_by: context.actor.clone(),
                        deprecated_at: at,
                    });
                }
                Ok(events)
            }
        }
    }

    fn add_version(
        &self,
        version: &SemVer,
        spec: &VersionSpec,
        context: &DecisionContext,
    ) -> Result<LabletDefinitionEvent, DomainError> {
        let names: std::collections::BTreeSet<&str> = spec.ports.iter().map(|p| p.name.as_str()).collect();
        if names.len() != spec.ports.len() {
            return Err(DomainError::InvalidValue {
                field: "spec.ports",
                message: "a port name appears twice".into(),
            });
        }
        if let Some(newest) = self.versions.keys().next_back() {
            if version <= newest {
                return Err(DomainError::RuleViolated(format!(
                    "version {version} is not after {newest}, the newest of {}",
                    self.name
                )));
            }
        }
        Ok(LabletDefinitionEvent::VersionAdded {
            version: version.to_string(),
            content: content_of(spec),
            added_by: context.actor.clone(),
            added_at: context.now,
        })
    }
}

/// A checked version spec as the plain values an event stores.
fn content_of(spec: &VersionSpec) -> VersionContent {
    VersionContent {
        artifact_uri: spec.artifact_uri.as_str().to_owned(),
        topology_sha256: spec.topology_sha256.as_str().to_owned(),
        resources: spec.resources,
        license_affinity: spec.license_affinity.clone(),
        node_count: spec.node_count.get(),
        ports: spec.ports.clone(),
        grading_rules_uri: spec.grading_rules_uri.as_ref().map(|uri| uri.as_str().to_owned()),
        max_duration_minutes: spec.max_duration_minutes.get(),
        warm_pool_depth: spec.warm_pool_depth.get(),
    }
}

impl Aggregate for LabletDefinition {
    const KIND: crate::AggregateKind = crate::AggregateKind::LabletDefinition;
    type Event = LabletDefinitionEvent;
    type Command = LabletDefinitionCommand;

    fn decide(
        &self,
        command: &LabletDefinitionCommand,
        context: &DecisionContext,
    ) -> Result<Vec<LabletDefinitionEvent>, DomainError> {
        let at = context.now;
        if let LabletDefinitionCommand::Create { name, version, spec } = command {
            if self.exists {
                return Err(DomainError::AlreadyExists {
                    aggregate: Self::KIND.name(),
                });
            }
            let created = LabletDefinitionEvent::Created {
                name: name.to_string(),
                created_by: context.actor.clone(),
                created_at: at,
            };
            return Ok(vec![created, self.add_version(version, spec, context)?]);
        }
        if !self.exists {
            return Err(DomainError::NotFound {
                aggregate: Self::KIND.name(),
            });
        }
        match command {
            LabletDefinitionCommand::Create { .. } => unreachable!("decided above"),
            LabletDefinitionCommand::AddVersion { version, spec } => {
                Ok(vec![self.add_version(version, spec, context)?])
            }
            LabletDefinitionCommand::RecordSync { version, outcome } => self.record_sync(version, outcome, context),
            LabletDefinitionCommand::Deprecate { version, reason } => match self.version(version)?.status {
                VersionStatus::Deprecated => Ok(Vec::new()),
                VersionStatus::Archived => {
                    Err(self.invalid(version, VersionStatus::Archived, VersionStatus::Deprecated))
                }
                _ => Ok(vec![LabletDefinitionEvent::VersionDeprecated {
                    version: version.to_string(),
                    reason: reason.as_str().to_owned(),
                    deprecated_by: context.actor.clone(),
                    deprecated_at: at,
                }]),
            },
            LabletDefinitionCommand::Deactivate { version } => match self.version(version)?.status {
                VersionStatus::Inactive => Ok(Vec::new()),
                VersionStatus::Active => Ok(vec![LabletDefinitionEvent::VersionDeactivated {
                    version: version.to_string(),
                    deactivated_by: context.actor.clone(),
                    deactivated_at: at,
                }]),
                other => Err(self.invalid(version, other, VersionStatus::Inactive)),
            },
            LabletDefinitionCommand::Reactivate { version } => match self.version(version)?.status {
                VersionStatus::Active => Ok(Vec::new()),
                VersionStatus::Inactive => {
                    if let Some((active, _)) = self.active_version() {
                        return Err(DomainError::RuleViolated(format!(
                            "version {active} is active; a definition has one active version"
                        )));
                    }
                    Ok(vec![LabletDefinitionEvent::VersionReactivated {
                        version: version.to_string(),
                        reactivated_by: context.actor.clone(),
                        reactivated_at: at,
                    }])
                }
                other => Err(self.invalid(version, other, VersionStatus::Active)),
            },
            LabletDefinitionCommand::Archive { version } => match self.version(version)?.status {
                VersionStatus::Archived => Ok(Vec::new()),
                VersionStatus::Active => Err(DomainError::RuleViolated(format!(
                    "version {version} is active: deprecate it before archiving it"
                ))),
                _ => Ok(vec![LabletDefinitionEvent::VersionArchived {
                    version: version.to_string(),
                    archived_by: context.actor.clone(),
                    archived_at: at,
                }]),
            },
        }
    }

    fn apply(&mut self, event: &LabletDefinitionEvent) {
        let status = |state: &mut Self, version: &str, status: VersionStatus, error: Option<String>| {
            if let Some(entry) = SemVer::parse(version).ok().and_then(|v| state.versions.get_mut(&v)) {
                entry.status = status;
                entry.sync_error = error;
            }
        };
        match event {
            LabletDefinitionEvent::Created { name, .. } => {
                self.exists = true;
                self.name = name.clone();
            }
            LabletDefinitionEvent::VersionAdded { version, content, .. } => {
                if let Ok(version) = SemVer::parse(version) {
                    let state = VersionState {
                        content: content.clone(),
                        status: VersionStatus::PendingSync,
                        sync_error: None,
                    };
                    self.versions.insert(version, state);
                }
            }
            LabletDefinitionEvent::VersionActivated { version, .. } => {
                status(self, version, VersionStatus::Active, None)
            }
            LabletDefinitionEvent::VersionSyncFailed { version, reason, .. } => {
                status(self, version, VersionStatus::PendingSync, Some(reason.clone()))
            }
            LabletDefinitionEvent::VersionDeprecated { version, .. } => {
                status(self, version, VersionStatus::Deprecated, None)
            }
            LabletDefinitionEvent::VersionArchived { version, .. } => {
                status(self, version, VersionStatus::Archived, None)
            }
            LabletDefinitionEvent::VersionDeactivated { version, .. } => {
                status(self, version, VersionStatus::Inactive, None)
            }
            LabletDefinitionEvent::VersionReactivated { version, .. } => {
                status(self, version, VersionStatus::Active, None)
            }
        }
    }
}
