//! The workers the jobs visit, read from the `workers` read model.

use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::read_models::{Filter, ListQuery};
use crate::ports::CmlTarget;
use crate::read_model_queries::{ListDocuments, MAX_PAGE, WORKERS};
use lablet_domain::worker::{takes_work, ServiceStatus, WorkerStatus};
use serde::Deserialize;
use uuid::Uuid;

/// What a job needs to know of a worker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RosterEntry {
    pub id: Uuid,
    pub name: String,
    pub status: WorkerStatus,
    pub service_status: ServiceStatus,
    pub endpoint: Option<String>,
    #[serde(default)]
    pub insecure_tls: bool,
    #[serde(default)]
    pub idle_detection_enabled: bool,
    #[serde(default)]
    pub credentials_changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RosterEntry {
    /// Where its CML answers, if it has an endpoint.
    pub fn target(&self) -> Option<CmlTarget> {
        Some(CmlTarget {
            worker_id: self.id,
            endpoint: self.endpoint.clone()?,
            insecure_tls: self.insecure_tls,
            credentials_changed_at: self.credentials_changed_at,
        })
    }

    /// The domain's rule ([`takes_work`]) on what the read model says.
    pub fn can_take_work(&self) -> bool {
        takes_work(self.status, self.service_status, self.endpoint.is_some())
    }
}

/// Every worker in one of `statuses`, as the read model has them after `min_position`.
pub async fn list_workers(
    mediator: &Mediator,
    statuses: &[WorkerStatus],
    min_position: Option<u64>,
    context: &RequestContext,
) -> Result<Vec<RosterEntry>, AppError> {
    let mut entries = Vec::new();
    for status in statuses {
        let mut after_id = None;
        loop {
            let query = ListDocuments {
                collection: WORKERS,
                query: ListQuery {
                    filters: vec![Filter::Equals {
                        field: "status",
                        value: status.as_str().to_owned(),
                    }],
                    limit: MAX_PAGE,
                    after_id: after_id.take(),
                    include_history: false,
                },
                min_position,
            };
            let page = mediator.send(query, context).await?;
            for item in &page.items {
                let entry: RosterEntry = serde_json::from_str(item.get())
                    .map_err(|e| AppError::Internal(format!("a workers document cannot be read: {e}")))?;
                entries.push(entry);
            }
            match page.next_cursor {
                Some(cursor) => after_id = Some(cursor),
                None => break,
            }
        }
    }
    Ok(entries)
}
