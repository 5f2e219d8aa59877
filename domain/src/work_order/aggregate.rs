//! WorkOrder state, decisions and the fold of its events.

use super::commands::{Submission, WorkOrderCommand};
use super::events::{Lease, WorkOrderEvent};
use super::retry::RetryPolicy;
use super::state::WorkOrderState;
use crate::kernel::{Aggregate, DomainError};
use chrono::{DateTime, Utc};

/// The most attempts an order may ask for.
pub const MAX_ATTEMPTS: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WorkOrder {
    pub submission: Option<Submission>,
    pub state: Option<WorkOrderState>,
    pub attempt: u32,
    pub lease: Option<Lease>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub errors: Vec<String>,
    pub result: Option<serde_json::Value>,
    #[serde(skip)]
    pub retry_policy: RetryPolicy,
}

impl WorkOrder {
    fn current(&self) -> Result<WorkOrderState, DomainError> {
        self.state.ok_or(DomainError::NotFound {
            aggregate: Self::KIND.name(),
        })
    }

    fn ensure_can_move(&self, to: WorkOrderState) -> Result<WorkOrderState, DomainError> {
        let from = self.current()?;
        if from.can_move_to(to) {
            Ok(from)
        } else {
            Err(DomainError::InvalidTransition {
                aggregate: Self::KIND.name(),
                from: from.to_string(),
                to: to.to_string(),
            })
        }
    }

    fn max_attempts(&self) -> u32 {
        self.submission.as_ref().map_or(1, |s| s.max_attempts)
    }

    fn submit(&self, submission: &Submission) -> Result<Vec<WorkOrderEvent>, DomainError> {
        if self.state.is_some() {
            return Err(DomainError::AlreadyExists {
                aggregate: Self::KIND.name(),
            });
        }
        if submission.kind.trim().is_empty() {
            return Err(DomainError::InvalidValue {
                field: "kind",
                message: "must not be empty".into(),
            });
        }
        if submission.max_attempts == 0 || submission.max_attempts > MAX_ATTEMPTS {
            return Err(DomainError::InvalidValue {
                field: "max_attempts",
                message: format!("must be between 1 and {MAX_ATTEMPTS}"),
            });
        }
        Ok(vec![WorkOrderEvent::Submitted {
            kind: submission.kind.clone(),
            payload: submission.payload.clone(),
            priority: submission.priority,
            max_attempts: submission.max_attempts,
            resources: submission.resources,
            submitted_at: submission.submitted_at,
        }])
    }

    /// A failed attempt: back to waiting while attempts remain and the error is retryable.
    fn fail(
        &self,
        error: &str,
        retryable: bool,
        jitter: f64,
        at: DateTime<Utc>,
    ) -> Result<Vec<WorkOrderEvent>, DomainError> {
        let from = self.current()?;
        if !matches!(from, WorkOrderState::Preparing | WorkOrderState::Running) {
            return Err(DomainError::InvalidTransition {
                aggregate: Self::KIND.name(),
                from: from.to_string(),
                to: if retryable {
                    WorkOrderState::WaitingRetry
                } else {
                    WorkOrderState::Failed
                }
                .to_string(),
            });
        }
        if retryable && self.attempt < self.max_attempts() {
            let next_attempt_at = at + self.retry_policy.delay(self.attempt, jitter);
            return Ok(vec![WorkOrderEvent::AttemptFailed {
                attempt: self.attempt,
                error: error.to_owned(),
                next_attempt_at,
                at,
            }]);
        }
        Ok(vec![WorkOrderEvent::Failed {
            attempt: self.attempt,
            error: error.to_owned(),
            retryable,
            at,
        }])
    }
}

impl Aggregate for WorkOrder {
    const KIND: crate::AggregateKind = crate::AggregateKind::WorkOrder;
    type Event = WorkOrderEvent;
    type Command = WorkOrderCommand;

    fn decide(&self, command: &WorkOrderCommand) -> Result<Vec<WorkOrderEvent>, DomainError> {
        match command {
            WorkOrderCommand::Submit(submission) => self.submit(submission),
            WorkOrderCommand::Prepare {
                executor,
                expires_at,
                at,
            } => {
                self.ensure_can_move(WorkOrderState::Preparing)?;
                if executor.trim().is_empty() {
                    return Err(DomainError::InvalidValue {
                        field: "executor",
                        message: "must not be empty".into(),
                    });
                }
                if expires_at <= at {
                    return Err(DomainError::InvalidValue {
                        field: "expires_at",
                        message: "a lease must expire in the future".into(),
                    });
                }
                Ok(vec![WorkOrderEvent::Leased {
                    lease: Lease {
                        executor: executor.clone(),
                        expires_at: *expires_at,
                    },
                    attempt: self.attempt + 1,
                    at: *at,
                }])
            }
            WorkOrderCommand::Start { executor, at } => {
                self.ensure_can_move(WorkOrderState::Running)?;
                match &self.lease {
                    Some(lease) if &lease.executor == executor => Ok(vec![WorkOrderEvent::Started {
                        executor: executor.clone(),
                        at: *at,
                    }]),
                    _ => Err(DomainError::RuleViolated(format!(
                        "executor `{executor}` does not hold the lease of this order"
                    ))),
                }
            }
            WorkOrderCommand::Complete { result, at } => {
                self.ensure_can_move(WorkOrderState::Completed)?;
                Ok(vec![WorkOrderEvent::Completed {
                    result: result.clone(),
                    at: *at,
                }])
            }
            WorkOrderCommand::Fail {
                error,
                retryable,
                jitter,
                at,
            } => self.fail(error, *retryable, *jitter, *at),
            WorkOrderCommand::ExpireLease { jitter, at } => {
                let expired = self.lease.as_ref().is_some_and(|lease| lease.expires_at <= *at);
                if !expired {
                    return Err(DomainError::RuleViolated("the lease has not expired".into()));
                }
                self.fail("lease expired", true, *jitter, *at)
            }
            WorkOrderCommand::Requeue { at } => {
                self.ensure_can_move(WorkOrderState::Pending)?;
                match self.next_attempt_at {
                    Some(next) if next > *at => Err(DomainError::RuleViolated(format!(
                        "the order waits until {}",
                        next.to_rfc3339()
                    ))),
                    _ => Ok(vec![WorkOrderEvent::Requeued { at: *at }]),
                }
            }
            WorkOrderCommand::Cancel { reason, at } => {
                let from = self.ensure_can_move(WorkOrderState::Cancelled)?;
                Ok(vec![WorkOrderEvent::Cancelled {
                    from,
                    reason: reason.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn apply(&mut self, event: &WorkOrderEvent) {
        match event {
            WorkOrderEvent::Submitted {
                kind,
                payload,
                priority,
                max_attempts,
                resources,
                submitted_at,
            } => {
                self.submission = Some(Submission {
                    kind: kind.clone(),
                    payload: payload.clone(),
                    priority: *priority,
                    max_attempts: *max_attempts,
                    resources: *resources,
                    submitted_at: *submitted_at,
                });
            }
            WorkOrderEvent::Leased { lease, attempt, .. } => {
                self.lease = Some(lease.clone());
                self.attempt = *attempt;
                self.next_attempt_at = None;
            }
            WorkOrderEvent::Started { .. } => {}
            WorkOrderEvent::Completed { result, .. } => {
                self.result = Some(result.clone());
                self.lease = None;
            }
            WorkOrderEvent::AttemptFailed {
                error, next_attempt_at, ..
            } => {
                self.errors.push(error.clone());
                self.next_attempt_at = Some(*next_attempt_at);
                self.lease = None;
            }
            WorkOrderEvent::Failed { error, .. } => {
                self.errors.push(error.clone());
                self.lease = None;
            }
            WorkOrderEvent::Requeued { .. } => self.next_attempt_at = None,
            WorkOrderEvent::Cancelled { .. } => self.lease = None,
        }
        self.state = Some(event.target_state());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{execute, given};
    use crate::work_order::ResourceNeeds;
    use chrono::Duration;
    use WorkOrderState::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(minute)
    }

    fn submission(max_attempts: u32) -> Submission {
        Submission {
            kind: "lab.start".into(),
            payload: serde_json::json!({"lab": "x"}),
            priority: 5,
            max_attempts,
            resources: ResourceNeeds::default(),
            submitted_at: at(0),
        }
    }

    fn prepare() -> WorkOrderCommand {
        WorkOrderCommand::Prepare {
            executor: "exec-1".into(),
            expires_at: at(10),
            at: at(1),
        }
    }
    fn start() -> WorkOrderCommand {
        WorkOrderCommand::Start {
            executor: "exec-1".into(),
            at: at(2),
        }
    }
    fn fail(retryable: bool) -> WorkOrderCommand {
        WorkOrderCommand::Fail {
            error: "boom".into(),
            retryable,
            jitter: 1.0,
            at: at(3),
        }
    }

    fn order_in(state: WorkOrderState) -> WorkOrder {
        let mut order = WorkOrder::default();
        execute(&mut order, &WorkOrderCommand::Submit(submission(3))).unwrap();
        let steps: Vec<WorkOrderCommand> = match state {
            Pending => vec![],
            Preparing => vec![prepare()],
            Running => vec![prepare(), start()],
            WaitingRetry => vec![prepare(), start(), fail(true)],
            Completed => vec![
                prepare(),
                start(),
                WorkOrderCommand::Complete {
                    result: serde_json::json!({}),
                    at: at(4),
                },
            ],
            Failed => vec![prepare(), start(), fail(false)],
            Cancelled => vec![WorkOrderCommand::Cancel {
                reason: None,
                at: at(1),
            }],
        };
        for step in steps {
            execute(&mut order, &step).unwrap();
        }
        assert_eq!(order.state, Some(state));
        order
    }

    /// The command that tries to move an order into `to`.
    fn command_towards(to: WorkOrderState) -> WorkOrderCommand {
        match to {
            Pending => WorkOrderCommand::Requeue { at: at(60) },
            Preparing => prepare(),
            Running => start(),
            WaitingRetry => fail(true),
            Completed => WorkOrderCommand::Complete {
                result: serde_json::json!({"ok": true}),
                at: at(5),
            },
            Failed => fail(false),
            Cancelled => WorkOrderCommand::Cancel {
                reason: Some("test".into()),
                at: at(5),
            },
        }
    }

    #[test]
    fn every_pair_of_states_is_allowed_or_refused_as_the_machine_says() {
        for from in WorkOrderState::ALL {
            for to in WorkOrderState::ALL {
                let mut order = order_in(from);
                let expected = from.can_move_to(to);
                let result = execute(&mut order, &command_towards(to));
                assert_eq!(result.is_ok(), expected, "{from} -> {to}: {result:?}");
                if expected {
                    assert_eq!(order.state, Some(to));
                }
            }
        }
    }

    #[test]
    fn retryable_failures_back_off_until_attempts_run_out() {
        let mut order = WorkOrder::default();
        execute(&mut order, &WorkOrderCommand::Submit(submission(3))).unwrap();
        for attempt in 1..=2 {
            execute(&mut order, &prepare()).unwrap();
            assert_eq!(order.attempt, attempt);
            execute(&mut order, &fail(true)).unwrap();
            assert_eq!(order.state, Some(WaitingRetry));
            let expected_wait = RetryPolicy::default().delay(attempt, 1.0);
            assert_eq!(order.next_attempt_at, Some(at(3) + expected_wait));
            assert!(matches!(
                order.decide(&WorkOrderCommand::Requeue { at: at(3) }),
                Err(DomainError::RuleViolated(_))
            ));
            execute(
                &mut order,
                &WorkOrderCommand::Requeue {
                    at: at(3) + expected_wait,
                },
            )
            .unwrap();
            assert_eq!(order.state, Some(Pending));
        }
        execute(&mut order, &prepare()).unwrap();
        execute(&mut order, &fail(true)).unwrap();
        assert_eq!(order.state, Some(Failed));
        assert_eq!(order.errors.len(), 3);
    }

    #[test]
    fn non_retryable_failure_fails_at_once() {
        let mut order = order_in(Preparing);
        execute(&mut order, &fail(false)).unwrap();
        assert_eq!(order.state, Some(Failed));
    }

    #[test]
    fn only_the_lease_holder_starts_the_order() {
        let leased = given::<WorkOrder>([]).after([WorkOrderCommand::Submit(submission(3)), prepare()]);
        let stranger = WorkOrderCommand::Start {
            executor: "other".into(),
            at: at(2),
        };
        assert!(matches!(
            leased.clone().when(stranger).decided(),
            Err(DomainError::RuleViolated(_))
        ));
        leased.when(start()).then([WorkOrderEvent::Started {
            executor: "exec-1".into(),
            at: at(2),
        }]);
    }

    #[test]
    fn an_expired_lease_is_a_retryable_failure() {
        let mut order = order_in(Running);
        assert!(order
            .decide(&WorkOrderCommand::ExpireLease { jitter: 0.0, at: at(9) })
            .is_err());
        execute(
            &mut order,
            &WorkOrderCommand::ExpireLease {
                jitter: 0.0,
                at: at(10),
            },
        )
        .unwrap();
        assert_eq!(order.state, Some(WaitingRetry));
        assert_eq!(order.errors, vec!["lease expired".to_string()]);
    }

    #[test]
    fn submission_is_validated() {
        let mut empty_kind = submission(3);
        empty_kind.kind = "".into();
        assert!(matches!(
            WorkOrder::default().decide(&WorkOrderCommand::Submit(empty_kind)),
            Err(DomainError::InvalidValue { field: "kind", .. })
        ));
        for attempts in [0, MAX_ATTEMPTS + 1] {
            assert!(matches!(
                WorkOrder::default().decide(&WorkOrderCommand::Submit(submission(attempts))),
                Err(DomainError::InvalidValue {
                    field: "max_attempts",
                    ..
                })
            ));
        }
        assert!(matches!(
            order_in(Pending).decide(&WorkOrderCommand::Submit(submission(3))),
            Err(DomainError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn commands_on_a_missing_order_are_not_found() {
        assert_eq!(
            WorkOrder::default().decide(&prepare()),
            Err(DomainError::NotFound {
                aggregate: "work_order"
            })
        );
    }
}
