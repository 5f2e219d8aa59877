//! The artifact sync: a singleton job that finds every definition version still
//! `pending_sync`, reads its artifact ([`ArtifactSource`]), and records what it found on the
//! definition (`RecordSync`): a matching SHA-256 and node count activates the version (and
//! deprecates the one that was active), anything else leaves it pending with the reason. A
//! failure that repeats records nothing new, so a broken URL costs a read per pass, not an
//! event.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::read_models::ListQuery;
use crate::ports::{ArtifactSource, Clock, LeaseFence};
use crate::read_model_queries::{ListDocuments, LABLET_DEFINITIONS, MAX_PAGE};
use crate::shutdown::stopped;
use lablet_domain::lablet_definition::{LabletDefinition, LabletDefinitionCommand, SemVer, SyncOutcome};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The singleton role (lease) the sync runs under.
pub const DEFINITION_SYNC: &str = "definition_sync";

/// How often pending versions are looked for, unless configured.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// What the sync needs of a definition document.
#[derive(Debug, Deserialize)]
struct DefinitionEntry {
    id: Uuid,
    versions: Vec<VersionEntry>,
}

#[derive(Debug, Deserialize)]
struct VersionEntry {
    version: String,
    status: String,
    artifact_uri: String,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncPass {
    /// Pending versions found.
    pub pending: usize,
    /// Versions whose artifact was read (the definition decides whether it matched).
    pub fetched: usize,
    /// Versions whose artifact could not be read.
    pub unreadable: usize,
}

pub struct DefinitionSync {
    mediator: Arc<Mediator>,
    artifacts: Arc<dyn ArtifactSource>,
    every: Duration,
    clock: Arc<dyn Clock>,
}

impl DefinitionSync {
    pub fn new(
        mediator: Arc<Mediator>,
        artifacts: Arc<dyn ArtifactSource>,
        every: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        DefinitionSync {
            mediator,
            artifacts,
            every,
            clock,
        }
    }

    /// Syncs every `every` until `stop` turns true, its commands carrying `fence`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, fence: LeaseFence) {
        loop {
            if let Err(err) = self.pass(&RequestContext::system_under(&fence)).await {
                tracing::warn!(error = %err, "the definition sync pass failed; trying again next time");
            }
            tokio::select! {
                () = self.clock.sleep(self.every) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// One pass over every definition, its commands made in `context`.
    pub async fn pass(&self, context: &RequestContext) -> Result<SyncPass, AppError> {
        let mut report = SyncPass::default();
        for (id, version, uri) in self.pending(context).await? {
            report.pending += 1;
            let Ok(version) = SemVer::parse(&version) else {
                continue;
            };
            let outcome = match self.artifacts.inspect(&uri).await {
                Ok(facts) => SyncOutcome::Fetched {
                    sha256: facts.sha256,
                    node_count: facts.node_count,
                },
                Err(err) => SyncOutcome::Failed {
                    reason: err.to_string(),
                },
            };
            if matches!(outcome, SyncOutcome::Fetched { .. }) {
                report.fetched += 1;
            } else {
                report.unreadable += 1;
            }
            let command = Execute::<LabletDefinition>::on(id, LabletDefinitionCommand::RecordSync { version, outcome });
            self.mediator.send(command, context).await?;
        }
        Ok(report)
    }

    /// Every version still pending, as (definition id, version, artifact URI).
    async fn pending(&self, context: &RequestContext) -> Result<Vec<(Uuid, String, String)>, AppError> {
        let mut found = Vec::new();
        let mut after_id = None;
        loop {
            let query = ListDocuments {
                collection: LABLET_DEFINITIONS,
                query: ListQuery {
                    filters: Vec::new(),
                    limit: MAX_PAGE,
                    after_id: after_id.take(),
                    include_history: false,
                },
                min_position: None,
            };
            let page = self.mediator.send(query, context).await?;
            for item in &page.items {
                let entry: DefinitionEntry = serde_json::from_str(item.get())
                    .map_err(|e| AppError::Internal(format!("a definitions document cannot be read: {e}")))?;
                for version in entry.versions.into_iter().filter(|v| v.status == "pending_sync") {
                    found.push((entry.id, version.version, version.artifact_uri));
                }
            }
            match page.next_cursor {
                Some(cursor) => after_id = Some(cursor),
                None => return Ok(found),
            }
        }
    }
}
