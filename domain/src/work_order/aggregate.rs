//! WorkOrder state, decisions and the fold of its events.

use super::commands::{Failure, LeaseTerms, Submission, WorkOrderCommand};
use super::events::{Lease, WorkOrderEvent};
use super::retry::RetryPolicy;
use super::state::WorkOrderState;
use crate::kernel::{Aggregate, DecisionContext, DomainError};
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WorkOrder {
    pub state: Option<WorkOrderState>,
    pub kind: Option<String>,
    pub max_attempts: u32,
    pub submitted_at: Option<DateTime<Utc>>,
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

    fn submit(&self, submission: &Submission, at: DateTime<Utc>) -> Result<Vec<WorkOrderEvent>, DomainError> {
        if self.state.is_some() {
            return Err(DomainError::AlreadyExists {
                aggregate: Self::KIND.name(),
            });
        }
        Ok(vec![WorkOrderEvent::Submitted {
            kind: submission.kind.to_string(),
            payload: submission.payload.clone(),
            priority: submission.priority,
            max_attempts: submission.max_attempts.get(),
            resources: submission.resources,
            submitted_at: at,
        }])
    }

    fn lease(&self, terms: &LeaseTerms, at: DateTime<Utc>) -> Result<Vec<WorkOrderEvent>, DomainError> {
        self.ensure_can_move(WorkOrderState::Leased)?;
        Ok(vec![WorkOrderEvent::Leased {
            lease: Lease {
                executor: terms.executor.to_string(),
                expires_at: at + Duration::seconds(i64::from(terms.lease_seconds.get())),
            },
            attempt: self.attempt + 1,
            at,
        }])
    }

    fn start(&self, executor: &str, at: DateTime<Utc>) -> Result<Vec<WorkOrderEvent>, DomainError> {
        self.ensure_can_move(WorkOrderState::Running)?;
        match &self.lease {
            Some(lease) if lease.executor == executor => Ok(vec![WorkOrderEvent::Started {
                executor: executor.to_owned(),
                at,
            }]),
            _ => Err(DomainError::RuleViolated(format!(
                "executor `{executor}` does not hold the lease of this order"
            ))),
        }
    }

    /// A failed attempt: back to waiting while attempts remain and the error is retryable.
    fn fail(
        &self,
        error: &str,
        retryable: bool,
        context: &DecisionContext,
    ) -> Result<Vec<WorkOrderEvent>, DomainError> {
        let from = self.current()?;
        if !matches!(from, WorkOrderState::Leased | WorkOrderState::Running) {
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
        let at = context.now;
        if retryable && self.attempt < self.max_attempts {
            let next_attempt_at = at + self.retry_policy.delay(self.attempt, context.jitter);
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

    fn requeue(&self, at: DateTime<Utc>) -> Result<Vec<WorkOrderEvent>, DomainError> {
        self.ensure_can_move(WorkOrderState::Pending)?;
        match self.next_attempt_at {
            Some(next) if next > at => Err(DomainError::RuleViolated(format!(
                "the order waits until {}",
                next.to_rfc3339()
            ))),
            _ => Ok(vec![WorkOrderEvent::Requeued { at }]),
        }
    }
}

impl Aggregate for WorkOrder {
    const KIND: crate::AggregateKind = crate::AggregateKind::WorkOrder;
    type Event = WorkOrderEvent;
    type Command = WorkOrderCommand;

    fn decide(
        &self,
        command: &WorkOrderCommand,
        context: &DecisionContext,
    ) -> Result<Vec<WorkOrderEvent>, DomainError> {
        let at = context.now;
        match command {
            WorkOrderCommand::Submit(submission) => self.submit(submission, at),
            WorkOrderCommand::Lease(terms) => self.lease(terms, at),
            WorkOrderCommand::Start { executor } => self.start(executor, at),
            WorkOrderCommand::Complete { result } => {
                self.ensure_can_move(WorkOrderState::Completed)?;
                Ok(vec![WorkOrderEvent::Completed {
                    result: result.clone(),
                    at,
                }])
            }
            WorkOrderCommand::Fail(Failure { error, retryable }) => self.fail(error.as_str(), *retryable, context),
            WorkOrderCommand::ExpireLease => {
                let expired = self.lease.as_ref().is_some_and(|lease| lease.expires_at <= at);
                if !expired {
                    return Err(DomainError::RuleViolated("the lease has not expired".into()));
                }
                self.fail("lease expired", true, context)
            }
            WorkOrderCommand::Requeue => self.requeue(at),
            WorkOrderCommand::Cancel { reason } => {
                let from = self.ensure_can_move(WorkOrderState::Cancelled)?;
                Ok(vec![WorkOrderEvent::Cancelled {
                    from,
                    reason: reason.as_ref().map(|r| r.as_str().to_owned()),
                    at,
                }])
            }
        }
    }

    fn apply(&mut self, event: &WorkOrderEvent) {
        match event {
            WorkOrderEvent::Submitted {
                kind,
                max_attempts,
                submitted_at,
                ..
            } => {
                self.kind = Some(kind.clone());
                self.max_attempts = *max_attempts;
                self.submitted_at = Some(*submitted_at);
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
    use crate::testing::{execute, given, TEST_ACTOR};
    use crate::values::{Bounded, ExecutorName, Name, RequiredText};
    use crate::work_order::ResourceNeeds;
    use WorkOrderState::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(minute)
    }

    /// Deciding at minute `minute`, with the largest jitter.
    fn ctx(minute: i64) -> DecisionContext {
        DecisionContext {
            now: at(minute),
            actor: TEST_ACTOR.into(),
            jitter: 1.0,
        }
    }

    fn submission(max_attempts: u32) -> Submission {
        Submission {
            kind: Name::parse("lab.start").unwrap(),
            payload: serde_json::json!({"lab": "x"}),
            priority: 5,
            max_attempts: Bounded::parse(max_attempts).unwrap(),
            resources: ResourceNeeds::default(),
        }
    }

    fn executor(name: &str) -> ExecutorName {
        Name::parse(name).unwrap()
    }

    /// Leased by exec-1 for nine minutes (at minute 1, until minute 10).
    fn lease() -> WorkOrderCommand {
        WorkOrderCommand::Lease(LeaseTerms {
            executor: executor("exec-1"),
            lease_seconds: Bounded::parse(540).unwrap(),
        })
    }
    fn start() -> WorkOrderCommand {
        WorkOrderCommand::Start {
            executor: executor("exec-1"),
        }
    }
    fn fail(retryable: bool) -> WorkOrderCommand {
        WorkOrderCommand::Fail(Failure {
            error: RequiredText::parse("boom").unwrap(),
            retryable,
        })
    }
    fn complete() -> WorkOrderCommand {
        WorkOrderCommand::Complete {
            result: serde_json::json!({}),
        }
    }

    fn order_in(state: WorkOrderState) -> WorkOrder {
        let mut order = WorkOrder::default();
        execute(&mut order, &WorkOrderCommand::Submit(submission(3)), &ctx(0)).unwrap();
        let steps: Vec<(WorkOrderCommand, i64)> = match state {
            Pending => vec![],
            Leased => vec![(lease(), 1)],
            Running => vec![(lease(), 1), (start(), 2)],
            WaitingRetry => vec![(lease(), 1), (start(), 2), (fail(true), 3)],
            Completed => vec![(lease(), 1), (start(), 2), (complete(), 4)],
            Failed => vec![(lease(), 1), (start(), 2), (fail(false), 3)],
            Cancelled => vec![(WorkOrderCommand::Cancel { reason: None }, 1)],
        };
        for (step, minute) in steps {
            execute(&mut order, &step, &ctx(minute)).unwrap();
        }
        assert_eq!(order.state, Some(state));
        order
    }

    /// The command that tries to move an order into `to`.
    fn command_towards(to: WorkOrderState) -> WorkOrderCommand {
        match to {
            Pending => WorkOrderCommand::Requeue,
            Leased => lease(),
            Running => start(),
            WaitingRetry => fail(true),
            Completed => complete(),
            Failed => fail(false),
            Cancelled => WorkOrderCommand::Cancel {
                reason: Some(crate::values::FreeText::parse("test").unwrap()),
            },
        }
    }

    #[test]
    fn every_pair_of_states_is_allowed_or_refused_as_the_machine_says() {
        for from in WorkOrderState::ALL {
            for to in WorkOrderState::ALL {
                let mut order = order_in(from);
                let expected = from.can_move_to(to);
                let result = execute(&mut order, &command_towards(to), &ctx(60));
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
        execute(&mut order, &WorkOrderCommand::Submit(submission(3)), &ctx(0)).unwrap();
        for attempt in 1..=2 {
            execute(&mut order, &lease(), &ctx(1)).unwrap();
            assert_eq!(order.attempt, attempt);
            execute(&mut order, &fail(true), &ctx(3)).unwrap();
            assert_eq!(order.state, Some(WaitingRetry));
            let expected_wait = RetryPolicy::default().delay(attempt, 1.0);
            assert_eq!(order.next_attempt_at, Some(at(3) + expected_wait));
            assert!(matches!(
                order.decide(&WorkOrderCommand::Requeue, &ctx(3)),
                Err(DomainError::RuleViolated(_))
            ));
            let when_due = DecisionContext {
                now: at(3) + expected_wait,
                ..ctx(3)
            };
            execute(&mut order, &WorkOrderCommand::Requeue, &when_due).unwrap();
            assert_eq!(order.state, Some(Pending));
        }
        execute(&mut order, &lease(), &ctx(1)).unwrap();
        execute(&mut order, &fail(true), &ctx(3)).unwrap();
        assert_eq!(order.state, Some(Failed));
        assert_eq!(order.errors.len(), 3);
    }

    #[test]
    fn non_retryable_failure_fails_at_once() {
        let mut order = order_in(Leased);
        execute(&mut order, &fail(false), &ctx(3)).unwrap();
        assert_eq!(order.state, Some(Failed));
    }

    #[test]
    fn only_the_lease_holder_starts_the_order() {
        let leased = given::<WorkOrder>([])
            .at(at(1))
            .after([WorkOrderCommand::Submit(submission(3)), lease()])
            .at(at(2));
        let stranger = WorkOrderCommand::Start {
            executor: executor("other"),
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
    fn a_lease_runs_for_its_seconds_from_the_moment_it_is_taken() {
        let order = order_in(Leased);
        assert_eq!(order.lease.map(|l| l.expires_at), Some(at(10)));
    }

    #[test]
    fn an_expired_lease_is_a_retryable_failure() {
        let mut order = order_in(Running);
        assert!(order.decide(&WorkOrderCommand::ExpireLease, &ctx(9)).is_err());
        execute(&mut order, &WorkOrderCommand::ExpireLease, &ctx(10)).unwrap();
        assert_eq!(order.state, Some(WaitingRetry));
        assert_eq!(order.errors, vec!["lease expired".to_string()]);
    }

    #[test]
    fn submission_is_validated() {
        // An empty kind or an out-of-range attempt count cannot become a command at all.
        assert_eq!(Name::<128>::parse("").unwrap_err(), "must not be empty");
        for attempts in [0, 101] {
            assert_eq!(
                crate::work_order::Attempts::parse(attempts).unwrap_err(),
                "must be between 1 and 100"
            );
        }
        assert!(matches!(
            order_in(Pending).decide(&WorkOrderCommand::Submit(submission(3)), &ctx(0)),
            Err(DomainError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn commands_on_a_missing_order_are_not_found() {
        assert_eq!(
            WorkOrder::default().decide(&lease(), &ctx(1)),
            Err(DomainError::NotFound {
                aggregate: "work_order"
            })
        );
    }
}
