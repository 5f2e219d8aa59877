//! The work-order timers: a singleton job (`work_order_timers`) that, on every tick of the
//! clock port, fails the orders whose lease expired (a retryable failure: the order waits for
//! its next attempt, or fails for good when it has none left) and puts back to pending the
//! waiting orders whose next attempt is due. The decision stays with the order: a lease renewed
//! or an order moved on since the read model was read is refused there and changes nothing.

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::ports::read_models::Filter;
use crate::ports::{Clock, LeaseFence};
use crate::read_model_queries::{list_all, WORK_ORDERS};
use crate::shutdown::stopped;
use chrono::{DateTime, Utc};
use lablet_domain::work_order::{WorkOrder, WorkOrderCommand, WorkOrderState};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The singleton role (lease) the timers run under.
pub const WORK_ORDER_TIMERS: &str = "work_order_timers";

#[derive(Debug, Deserialize)]
struct LeaseEntry {
    expires_at: DateTime<Utc>,
}

/// What the timers need of a work-order document.
#[derive(Debug, Deserialize)]
struct OrderEntry {
    id: Uuid,
    lease: Option<LeaseEntry>,
    next_attempt_at: Option<DateTime<Utc>>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimersPass {
    pub leases_expired: usize,
    pub requeued: usize,
}

pub struct WorkOrderTimers {
    mediator: Arc<Mediator>,
    clock: Arc<dyn Clock>,
    every: Duration,
}

impl WorkOrderTimers {
    pub fn new(mediator: Arc<Mediator>, clock: Arc<dyn Clock>, every: Duration) -> Self {
        WorkOrderTimers { mediator, clock, every }
    }

    /// A pass every `every` until `stop` turns true, its commands carrying `fence`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>, fence: LeaseFence) {
        loop {
            if let Err(err) = self.pass(&RequestContext::system_under(&fence)).await {
                tracing::warn!(error = %err, "the work-order timers failed; trying again next tick");
            }
            tokio::select! {
                () = self.clock.sleep(self.every) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// One pass: expired leases, then due retries.
    pub async fn pass(&self, context: &RequestContext) -> Result<TimersPass, AppError> {
        let now = self.clock.now();
        let mut report = TimersPass::default();
        for state in [WorkOrderState::Leased, WorkOrderState::Running] {
            for order in self.orders(state, context).await? {
                if order.lease.is_some_and(|lease| lease.expires_at <= now)
                    && self.send(order.id, WorkOrderCommand::ExpireLease, context).await?
                {
                    report.leases_expired += 1;
                }
            }
        }
        for order in self.orders(WorkOrderState::WaitingRetry, context).await? {
            if order.next_attempt_at.is_none_or(|next| next <= now)
                && self.send(order.id, WorkOrderCommand::Requeue, context).await?
            {
                report.requeued += 1;
            }
        }
        Ok(report)
    }

    async fn orders(&self, state: WorkOrderState, context: &RequestContext) -> Result<Vec<OrderEntry>, AppError> {
        let filter = Filter::Equals {
            field: "state",
            value: state.as_str().to_owned(),
        };
        list_all(&self.mediator, WORK_ORDERS, vec![filter], context).await
    }

    /// Sends `command`; answers whether it changed the order (a refusal means it moved on).
    async fn send(&self, id: Uuid, command: WorkOrderCommand, context: &RequestContext) -> Result<bool, AppError> {
        match self.mediator.send(Execute::<WorkOrder>::on(id, command), context).await {
            Ok(outcome) => Ok(outcome.changed),
            Err(AppError::Rule(_) | AppError::Conflict(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
