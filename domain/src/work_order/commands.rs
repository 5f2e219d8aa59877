//! What can be asked of a WorkOrder. The bodies of the submit, lease, start, complete, fail and
//! cancel requests are these types themselves.

use crate::kernel::Command;
use crate::values::{Bounded, ExecutorName, FreeText, Name, RequiredText};
use serde::{Deserialize, Serialize};

use super::events::ResourceNeeds;

/// Attempts an order may ask for.
pub type Attempts = Bounded<1, 100>;
/// How long an executor holds an order at once; it renews by leasing again.
pub type LeaseSeconds = Bounded<1, 3600>;

// A new order, as its submitter describes it. (Plain comments on the request bodies: the API
// document describes its operations, not these types.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SubmitBody")]
pub struct Submission {
    pub kind: Name<128>,
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: Attempts,
    #[serde(default)]
    pub resources: ResourceNeeds,
    /// Submitting twice with one key answers the first order: the order's id is derived from
    /// the key (see [`unique_order_id`](super::unique_order_id)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<Name<256>>,
}

fn default_max_attempts() -> Attempts {
    Bounded::new_const(3)
}

// An executor takes a pending order for `lease_seconds` (pending → leased, on the wire
// `preparing`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LeaseBody")]
pub struct LeaseTerms {
    pub executor: ExecutorName,
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: LeaseSeconds,
}

fn default_lease_seconds() -> LeaseSeconds {
    Bounded::new_const(300)
}

/// The fencing token of a lease: the attempt it was taken for. An executor names it in every
/// call about the order; a token older than the order's current attempt is refused.
pub type LeaseToken = u32;

// The attempt failed; with `retryable`, the order waits and is offered again while attempts
// remain.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FailBody")]
pub struct Failure {
    pub token: LeaseToken,
    pub error: RequiredText<4096>,
    #[serde(default = "retryable_by_default")]
    pub retryable: bool,
}

fn retryable_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkOrderCommand {
    Submit(Submission),
    Lease(LeaseTerms),
    /// The lease holder begins the work (leased → running).
    Start {
        executor: ExecutorName,
        token: LeaseToken,
    },
    /// The lease holder extends its lease while it works (a heartbeat).
    Renew {
        token: LeaseToken,
        lease_seconds: LeaseSeconds,
    },
    Complete {
        token: LeaseToken,
        result: serde_json::Value,
    },
    Fail(Failure),
    /// The lease ran out without an outcome: a retryable failure.
    ExpireLease,
    /// Offer a waiting order again once its backoff has passed.
    Requeue,
    Cancel {
        reason: Option<FreeText<1024>>,
    },
}

impl Command for WorkOrderCommand {
    fn name(&self) -> &'static str {
        match self {
            WorkOrderCommand::Submit(_) => "work_order.submit",
            WorkOrderCommand::Lease(_) => "work_order.lease",
            WorkOrderCommand::Start { .. } => "work_order.start",
            WorkOrderCommand::Renew { .. } => "work_order.renew",
            WorkOrderCommand::Complete { .. } => "work_order.complete",
            WorkOrderCommand::Fail(_) => "work_order.fail",
            WorkOrderCommand::ExpireLease => "work_order.expire_lease",
            WorkOrderCommand::Requeue => "work_order.requeue",
            WorkOrderCommand::Cancel { .. } => "work_order.cancel",
        }
    }
}
