//! `lablet_definitions`: one document per definition with every version, newest last.
//!
//! `status` is the newest version's status (what a list by status shows), `active_version`
//! the version that takes new instances (none while nothing is synced, or once it was
//! deprecated), `latest_version` the newest one.

use crate::projector::{decode, existing, Patch, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use lablet_application::envelope::EventEnvelope;
use lablet_application::ports::CollectionSpec;
use lablet_application::read_model_queries::LABLET_DEFINITIONS;
use lablet_domain::lablet_definition::{LabletDefinitionEvent, VersionContent, VersionStatus};
use lablet_domain::AggregateKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The shape of a definition document (plus `version` and `updated_at`, stamped by the runner).
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionView {
    pub id: String,
    pub name: String,
    pub status: Option<VersionStatus>,
    pub active_version: Option<String>,
    pub latest_version: Option<String>,
    pub versions: Vec<VersionView>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One version in a definition document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionView {
    pub version: String,
    pub status: VersionStatus,
    #[serde(flatten)]
    pub content: VersionContent,
    pub sync_error: Option<String>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub deprecated_at: Option<DateTime<Utc>>,
    pub deprecation_reason: Option<String>,
    pub archived_at: Option<DateTime<Utc>>,
}

pub struct LabletDefinitionsProjector;

fn versions_of(current: &Map<String, Value>) -> Result<Vec<VersionView>, ProjectionError> {
    match current.get("versions") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(versions) => serde_json::from_value(versions.clone())
            .map_err(|e| ProjectionError::BadDocument(format!("versions of a definition: {e}"))),
    }
}

/// Sets `versions`, and the status of the newest version as the definition's.
fn set_versions(patch: &mut Patch, versions: &[VersionView]) -> Result<(), ProjectionError> {
    patch
        .set("status", versions.last().map(|v| v.status))?
        .set("versions", versions)?;
    Ok(())
}

impl Projector for LabletDefinitionsProjector {
    fn collection(&self) -> CollectionSpec {
        LABLET_DEFINITIONS
    }

    fn kind(&self) -> AggregateKind {
        AggregateKind::LabletDefinition
    }

    fn project(
        &self,
        current: Option<&Map<String, Value>>,
        envelope: &EventEnvelope,
    ) -> Result<Patch, ProjectionError> {
        let event: LabletDefinitionEvent = decode(envelope)?;
        let mut patch = Patch::default();
        if let LabletDefinitionEvent::Created {
            name,
            created_by,
            created_at,
        } = event
        {
            patch.set_all(&DefinitionView {
                id: envelope.aggregate_id().to_owned(),
                name,
                status: None,
                active_version: None,
                latest_version: None,
                versions: Vec::new(),
                created_by,
                created_at,
            })?;
            return Ok(patch);
        }
        let current = existing(current, envelope)?;
        let mut versions = versions_of(current)?;
        let mut change = |version: &str, apply: &dyn Fn(&mut VersionView)| {
            versions.iter_mut().filter(|v| v.version == version).for_each(apply);
        };
        match &event {
            LabletDefinitionEvent::Created { .. } => unreachable!("handled above"),
            LabletDefinitionEvent::VersionAdded {
                version,
                content,
                added_by,
                added_at,
            } => {
                versions.push(VersionView {
                    version: version.clone(),
                    status: VersionStatus::PendingSync,
                    content: content.clone(),
                    sync_error: None,
                    added_by: added_by.clone(),
                    added_at: *added_at,
                    activated_at: None,
                    deprecated_at: None,
                    deprecation_reason: None,
                    archived_at: None,
                });
                patch.set("latest_version", version)?;
            }
            LabletDefinitionEvent::VersionActivated { version, activated_at } => {
                change(version, &|v| {
                    v.status = VersionStatus::Active;
                    v.sync_error = None;
                    v.activated_at = Some(*activated_at);
                });
                patch.set("active_version", version)?;
            }
            LabletDefinitionEvent::VersionSyncFailed { version, reason, .. } => {
                change(version, &|v| v.sync_error = Some(reason.clone()));
            }
            LabletDefinitionEvent::VersionDeprecated {
                version,
                reason,
                deprecated_at,
                ..
            } => {
                change(version, &|v| {
                    v.status = VersionStatus::Deprecated;
                    v.deprecated_at = Some(*deprecated_at);
                    v.deprecation_reason = Some(reason.clone());
                });
                if current.get("active_version").and_then(Value::as_str) == Some(version.as_str()) {
                    patch.set("active_version", Value::Null)?;
                }
            }
            LabletDefinitionEvent::VersionDeactivated { version, .. } => {
                change(version, &|v| v.status = VersionStatus::Inactive);
                if current.get("active_version").and_then(Value::as_str) == Some(version.as_str()) {
                    patch.set("active_version", Value::Null)?;
                }
            }
            LabletDefinitionEvent::VersionReactivated { version, .. } => {
                change(version, &|v| v.status = VersionStatus::Active);
                patch.set("active_version", version)?;
            }
            LabletDefinitionEvent::VersionArchived {
                version, archived_at, ..
            } => {
                change(version, &|v| {
                    v.status = VersionStatus::Archived;
                    v.archived_at = Some(*archived_at);
                });
            }
        }
        set_versions(&mut patch, &versions)?;
        Ok(patch)
    }
}
