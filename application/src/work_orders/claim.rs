//! Claiming: an executor asks for the next order it can run and gets it leased, waiting for one
//! up to a time it names (a long poll).
//!
//! The claim takes candidates from this replica's [`WorkQueue`] in claim order and leases each
//! through the order (the `Lease` command) until one lease holds. Two claimers, in one process
//! or in two replicas, never hold one order: the second lease is decided on the first one's
//! event, or its append conflicts with it, and is refused; the claimer moves to the next
//! candidate. The lease's fencing token is the attempt it starts.

use super::queue::{Candidate, ClaimFilter, WorkQueue};
use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::repository::AggregateRepository;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lablet_domain::values::{Bounded, ExecutorName, Name};
use lablet_domain::work_order::{LeaseSeconds, LeaseTerms, LeaseToken, ResourceNeeds, WorkOrder, WorkOrderCommand};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The longest a claim waits for an order.
pub type WaitMs = Bounded<0, 30_000>;

/// Kinds one claim may name.
const MAX_KINDS: usize = 64;

// An executor asks for the next order it can run (the body of `POST /work-orders/claim`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ClaimBody")]
pub struct ClaimWorkOrder {
    pub executor: ExecutorName,
    #[serde(default)]
    pub kinds: Vec<Name<128>>,
    #[serde(default)]
    pub capacity: Option<ResourceNeeds>,
    #[serde(default = "no_wait")]
    pub wait_ms: WaitMs,
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: LeaseSeconds,
}

fn no_wait() -> WaitMs {
    Bounded::new_const(0)
}

fn default_lease_seconds() -> LeaseSeconds {
    Bounded::new_const(300)
}

/// The order an executor now holds: what to do, and the token to name in every call about it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClaimedOrder {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub resources: ClaimedResources,
    /// The lease's fencing token: the attempt number.
    pub token: LeaseToken,
    pub lease_expires_at: DateTime<Utc>,
    /// The order's stream version and log position after the lease.
    pub version: u64,
    pub position: u64,
}

/// What a claimed order takes of its executor's capacity (in an answer, every field is written;
/// in a request body, [`ResourceNeeds`] lets them be left out).
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct ClaimedResources {
    pub cpu_cores: u32,
    pub memory_gb: u32,
    pub storage_gb: u32,
    pub max_nodes: u32,
}

impl From<ResourceNeeds> for ClaimedResources {
    fn from(needs: ResourceNeeds) -> Self {
        ClaimedResources {
            cpu_cores: needs.cpu_cores,
            memory_gb: needs.memory_gb,
            storage_gb: needs.storage_gb,
            max_nodes: needs.max_nodes,
        }
    }
}

impl Request for ClaimWorkOrder {
    type Output = Option<ClaimedOrder>;
    const NAME: &'static str = "work_order";
    const KIND: RequestKind = RequestKind::Command;

    fn name(&self) -> &'static str {
        "work_order.claim"
    }

    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if self.kinds.len() > MAX_KINDS {
            return Err(vec![FieldError::new(
                "kinds",
                format!("at most {MAX_KINDS} kinds, not {}", self.kinds.len()),
            )]);
        }
        Ok(())
    }
}

pub struct ClaimHandler {
    queue: Arc<WorkQueue>,
    repository: Arc<AggregateRepository>,
}

impl ClaimHandler {
    pub fn new(queue: Arc<WorkQueue>, repository: Arc<AggregateRepository>) -> Self {
        ClaimHandler { queue, repository }
    }

    /// Leases the candidates `filter` admits, in claim order, until one lease holds. It runs as
    /// a task of its own: a caller that goes away mid-claim (an executor killed, a connection
    /// dropped) cannot leave an order taken from the index and never leased; at worst the
    /// order is leased to nobody listening, and its lease runs out.
    async fn claim_now(
        &self,
        request: &ClaimWorkOrder,
        filter: &ClaimFilter,
        context: &RequestContext,
    ) -> Result<Option<ClaimedOrder>, AppError> {
        let attempt = Claimer {
            queue: self.queue.clone(),
            repository: self.repository.clone(),
            terms: LeaseTerms {
                executor: request.executor.clone(),
                lease_seconds: request.lease_seconds,
            },
        };
        let (filter, context) = (filter.clone(), context.clone());
        tokio::spawn(async move { attempt.claim(&filter, &context).await })
            .await
            .map_err(|err| AppError::Internal(format!("a claim stopped: {err}")))?
    }
}

/// One claim attempt, owning what it needs.
struct Claimer {
    queue: Arc<WorkQueue>,
    repository: Arc<AggregateRepository>,
    terms: LeaseTerms,
}

impl Claimer {
    async fn claim(&self, filter: &ClaimFilter, context: &RequestContext) -> Result<Option<ClaimedOrder>, AppError> {
        while let Some(candidate) = self.queue.take(filter) {
            let command = WorkOrderCommand::Lease(self.terms.clone());
            match self
                .repository
                .execute::<WorkOrder>(candidate.id, &command, context)
                .await
            {
                Ok(outcome) => {
                    self.queue.leased(candidate.id, outcome.version);
                    return self
                        .claimed(candidate, outcome.version, outcome.position)
                        .await
                        .map(Some);
                }
                // Leased or cancelled meanwhile: the log will tell the index; the next one.
                Err(AppError::Rule(_) | AppError::Conflict(_) | AppError::NotFound(_)) => continue,
                Err(err) => {
                    self.queue.put_back(candidate.id);
                    return Err(err);
                }
            }
        }
        Ok(None)
    }

    /// The answer for a leased candidate, its lease read back from the order.
    async fn claimed(&self, candidate: Candidate, version: u64, position: u64) -> Result<ClaimedOrder, AppError> {
        let order = self.repository.load::<WorkOrder>(candidate.id).await?.state;
        let lease = order
            .lease
            .ok_or_else(|| AppError::Unavailable("a leased order has no lease".into()))?;
        Ok(ClaimedOrder {
            id: candidate.id,
            kind: candidate.kind,
            payload: candidate.payload,
            priority: candidate.priority,
            resources: candidate.resources.into(),
            token: order.attempt,
            lease_expires_at: lease.expires_at,
            version,
            position,
        })
    }
}

#[async_trait]
impl Handler<ClaimWorkOrder> for ClaimHandler {
    async fn handle(
        &self,
        request: &ClaimWorkOrder,
        context: &RequestContext,
    ) -> Result<Option<ClaimedOrder>, AppError> {
        let filter = ClaimFilter {
            kinds: request.kinds.iter().map(|kind| kind.as_str().to_owned()).collect(),
            capacity: request.capacity,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(u64::from(request.wait_ms.get()));
        loop {
            let woken = self.queue.claimable();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(claimed) = self.claim_now(request, &filter, context).await? {
                return Ok(Some(claimed));
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(None);
            }
        }
    }
}
