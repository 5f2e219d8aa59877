//! The built-in executors: workers of the work-order queue that run inside `lablet serve`, on
//! every replica, claiming through the same claim as remote executors (`docs/executors.md`).
//!
//! Each of `concurrency` loops claims an order of a built-in kind (a long poll), starts it with
//! the lease's token, renews the lease while the step runs (every third of its term), and
//! completes it with the step's result or fails it with the step's error. A refusal of its token
//! means the lease was taken over: the loop drops the order and claims the next.

mod lab_steps;

pub use lab_steps::{
    lab_title, LabOrder, LabSteps, StepError, ASSESSMENT_COLLECT, BUILTIN_KINDS, LAB_DELETE, LAB_IMPORT, LAB_START,
    LAB_STOP, LAB_WIPE,
};

use crate::commands::Execute;
use crate::context::RequestContext;
use crate::error::AppError;
use crate::mediator::Mediator;
use crate::shutdown::stopped;
use crate::work_orders::{ClaimWorkOrder, ClaimedOrder};
use lablet_domain::values::{Bounded, Name, RequiredText};
use lablet_domain::work_order::{Failure, WorkOrder, WorkOrderCommand};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the built-in executors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorSettings {
    /// Orders run at once by this replica; 0 switches the built-in executors off.
    pub concurrency: usize,
    /// The lease a claim takes, renewed every third of it while the step runs.
    pub lease_seconds: u32,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        ExecutorSettings {
            concurrency: 4,
            lease_seconds: 60,
        }
    }
}

/// How long one claim waits for an order.
const CLAIM_WAIT_MS: u32 = 5_000;

pub struct BuiltinExecutors {
    mediator: Arc<Mediator>,
    steps: Arc<LabSteps>,
    settings: ExecutorSettings,
    /// This replica's name for its executors; each loop adds its number.
    name: String,
}

impl BuiltinExecutors {
    pub fn new(mediator: Arc<Mediator>, steps: Arc<LabSteps>, settings: ExecutorSettings, name: String) -> Self {
        BuiltinExecutors {
            mediator,
            steps,
            settings,
            name,
        }
    }

    /// Runs the loops until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.settings.concurrency)
            .map(|n| tokio::spawn(self.clone().run_loop(n, stop.clone())))
            .collect();
        for handle in loops {
            let _ = handle.await;
        }
    }

    async fn run_loop(self: Arc<Self>, n: usize, mut stop: watch::Receiver<bool>) {
        let executor = format!("{}-{n}", self.name);
        let context = RequestContext::system();
        loop {
            let claimed = tokio::select! {
                claimed = self.claim(&executor, &context) => claimed,
                () = stopped(&mut stop) => return,
            };
            match claimed {
                Ok(Some(order)) => self.work(&executor, order, &context).await,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(%executor, error = %err, "a claim failed; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stopped(&mut stop) => return,
                    }
                }
            }
        }
    }

    async fn claim(&self, executor: &str, context: &RequestContext) -> Result<Option<ClaimedOrder>, AppError> {
        let request = ClaimWorkOrder {
            executor: Name::parse(executor).map_err(AppError::Unavailable)?,
            kinds: BUILTIN_KINDS
                .iter()
                .filter_map(|kind| Name::parse(*kind).ok())
                .collect(),
            capacity: None,
            wait_ms: Bounded::new_const(CLAIM_WAIT_MS),
            lease_seconds: Bounded::parse(self.settings.lease_seconds).unwrap_or(Bounded::new_const(60)),
        };
        self.mediator.send(request, context).await
    }

    /// Runs one claimed order to its outcome; a stale token ends the work quietly.
    async fn work(&self, executor: &str, order: ClaimedOrder, context: &RequestContext) {
        let token = order.token;
        let start = WorkOrderCommand::Start {
            executor: match Name::parse(executor) {
                Ok(name) => name,
                Err(_) => return,
            },
            token,
        };
        if let Err(err) = self.send(&order, start, context).await {
            tracing::info!(order = %order.id, error = %err, "a claimed order could not be started");
            return;
        }
        let outcome = {
            let step = self.steps.run(&order.kind, &order.payload, context);
            tokio::pin!(step);
            let every = Duration::from_secs(u64::from(self.settings.lease_seconds.max(3) / 3));
            loop {
                tokio::select! {
                    outcome = &mut step => break outcome,
                    () = tokio::time::sleep(every) => {
                        let renew = WorkOrderCommand::Renew {
                            token,
                            lease_seconds: Bounded::parse(self.settings.lease_seconds).unwrap_or(Bounded::new_const(60)),
                        };
                        if let Err(err) = self.send(&order, renew, context).await {
                            tracing::warn!(order = %order.id, error = %err, "the lease could not be renewed");
                        }
                    }
                }
            }
        };
        let report = match outcome {
            Ok(result) => WorkOrderCommand::Complete { token, result },
            Err(error) => match failure(token, &error) {
                Some(failure) => failure,
                None => {
                    tracing::warn!(order = %order.id, error = %error.message, "a step's error cannot be reported");
                    return;
                }
            },
        };
        if let Err(err) = self.send(&order, report, context).await {
            tracing::warn!(order = %order.id, error = %err, "the outcome of an order could not be reported");
        }
    }

    async fn send(
        &self,
        order: &ClaimedOrder,
        command: WorkOrderCommand,
        context: &RequestContext,
    ) -> Result<(), AppError> {
        self.mediator
            .send(Execute::<WorkOrder>::on(order.id, command), context)
            .await
            .map(|_| ())
    }
}

/// The failure report of a step's `error`, its message cut to what an order keeps.
fn failure(token: u32, error: &StepError) -> Option<WorkOrderCommand> {
    let message: String = error.message.chars().take(4000).collect();
    let message = if message.trim().is_empty() {
        "the step failed".to_owned()
    } else {
        message
    };
    Some(WorkOrderCommand::Fail(Failure {
        token,
        error: RequiredText::parse(message).ok()?,
        retryable: error.retryable,
    }))
}
