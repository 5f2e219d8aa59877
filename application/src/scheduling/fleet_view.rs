//! What the scheduler reads of the read models: pending instances, definitions and workers,
//! parsed into the shapes placement needs.

use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::read_models::Filter;
use crate::ports::CollectionSpec;
use crate::read_model_queries::{list_all, GetDocument, LABLET_DEFINITIONS, LABLET_INSTANCES, WORKERS};
use chrono::{DateTime, Utc};
use lablet_domain::lablet_definition::VersionContent;
use lablet_domain::placement::WorkerSnapshot;
use lablet_domain::worker::{takes_work, Allocation, Capacity, License, ServiceStatus, WorkerStatus};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A pending instance as the scheduler needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingInstance {
    pub id: Uuid,
    pub definition_id: Uuid,
    pub definition_version: String,
    pub timeslot_start: DateTime<Utc>,
}

/// A worker document as placement needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerEntry {
    pub id: Uuid,
    pub status: WorkerStatus,
    pub service_status: ServiceStatus,
    pub endpoint: Option<String>,
    pub license: Option<License>,
    pub declared_capacity: Capacity,
    #[serde(default)]
    pub allocated_capacity: Capacity,
    #[serde(default)]
    pub allocations: BTreeMap<Uuid, Allocation>,
    #[serde(default)]
    pub free_ports: usize,
}

impl WorkerEntry {
    /// What placement needs to know of this worker.
    pub fn snapshot(&self) -> WorkerSnapshot {
        let takes = takes_work(self.status, self.service_status, self.endpoint.is_some());
        WorkerSnapshot {
            id: self.id,
            takes_work: if takes {
                Ok(())
            } else {
                Err(format!(
                    "status {}, CML {}, {}",
                    self.status.as_str(),
                    self.service_status.as_str(),
                    if self.endpoint.is_some() {
                        "endpoint set"
                    } else {
                        "no endpoint"
                    }
                ))
            },
            license: self.license.as_ref().and_then(|l| l.license_type),
            declared: self.declared_capacity,
            allocated: self.allocated_capacity,
            instances: self.allocations.len(),
            free_ports: self.free_ports,
        }
    }
}

/// A definition document's versions, by version text.
#[derive(Debug, Clone, Deserialize)]
pub struct DefinitionEntry {
    pub name: String,
    pub versions: Vec<VersionEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VersionEntry {
    pub version: String,
    pub status: String,
    #[serde(flatten)]
    pub content: VersionContent,
}

fn unreadable(collection: &str, err: serde_json::Error) -> AppError {
    AppError::Internal(format!("a {collection} document cannot be read: {err}"))
}

pub async fn pending_instances(
    mediator: &Mediator,
    context: &RequestContext,
) -> Result<Vec<PendingInstance>, AppError> {
    let pending = Filter::Equals {
        field: "state",
        value: "pending".into(),
    };
    list_all(mediator, LABLET_INSTANCES, vec![pending], context).await
}

pub async fn workers(mediator: &Mediator, context: &RequestContext) -> Result<Vec<WorkerEntry>, AppError> {
    list_all(mediator, WORKERS, Vec::new(), context).await
}

/// One document by id, parsed; None if there is none.
pub async fn document<T: DeserializeOwned>(
    mediator: &Mediator,
    collection: CollectionSpec,
    id: Uuid,
    context: &RequestContext,
) -> Result<Option<T>, AppError> {
    let query = GetDocument {
        collection,
        id: id.to_string(),
        min_position: None,
    };
    match mediator.send(query, context).await {
        Ok(raw) => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| unreadable(collection.name, e)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

pub async fn definition(
    mediator: &Mediator,
    id: Uuid,
    context: &RequestContext,
) -> Result<Option<DefinitionEntry>, AppError> {
    document(mediator, LABLET_DEFINITIONS, id, context).await
}
