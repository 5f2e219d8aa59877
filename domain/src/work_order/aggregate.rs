//! WorkOrder state, decisions and the fold of its events.

use super::commands::{Failure, LeaseSeconds, LeaseTerms, LeaseToken, Submission, WorkOrderCommand};
use super::events::{Lease, WorkOrderEvent};
use super::retry::RetryPolicy;
use super::state::WorkOrderState;
use crate::kernel::{Aggregate, DecisionContext, DomainError};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// The namespace of the ids of orders submitted with a unique key; changing it would let a key
/// submitted before the change be submitted again.
const UNIQUE_ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x8738_c96c_f8d2_4b11_a231_84f2_fd58_5b53);

/// The error an attempt whose lease ran out is recorded with.
pub const LEASE_EXPIRED: &str = "lease expired";

/// The id of the order submitted under `unique_key`: the UUIDv5 of the key, so that every
/// submission with the key, on any replica, addresses one stream and only the first creates it.
pub fn unique_order_id(unique_key: &str) -> Uuid {
    Uuid::new_v5(&UNIQUE_ORDER_NAMESPACE, unique_key.as_bytes())
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WorkOrder {
    pub state: Option<WorkOrderState>,
    pub kind: Option<String>,
    pub unique_key: Option<String>,
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
        let key = submission.unique_key.as_ref().map(|key| key.as_str());
        if self.state.is_some() && key.is_some() && self.unique_key.as_deref() == key {
            // The same key again: the first order stands, whatever this one says.
            return Ok(Vec::new());
        }
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
            unique_key: submission.unique_key.as_ref().map(|key| key.as_str().to_owned()),
        }])
    }

    /// Refuses a call about the order whose token is not the current lease's: the lease was
    /// taken over (or the order moved on), and the caller must stop working on it.
    fn check_token(&self, token: LeaseToken) -> Result<WorkOrderState, DomainError> {
        let state = self.current()?;
        let held = matches!(state, WorkOrderState::Leased | WorkOrderState::Running) && self.lease.is_some();
        if held && token == self.attempt {
            return Ok(state);
        }
        Err(DomainError::StaleLease(if held {
            format!("lease token {token} is stale: the order is on attempt {}", self.attempt)
        } else {
            format!("lease token {token} is stale: the order is {state} and held by nobody")
        }))
    }

    fn renew(
        &self,
        token: LeaseToken,
        seconds: LeaseSeconds,
        at: DateTime<Utc>,
    ) -> Result<Vec<WorkOrderEvent>, DomainError> {
        self.check_token(token)?;
        Ok(vec![WorkOrderEvent::LeaseRenewed {
            attempt: self.attempt,
            expires_at: at + Duration::seconds(i64::from(seconds.get())),
            at,
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

    fn start(&self, executor: &str, token: LeaseToken, at: DateTime<Utc>) -> Result<Vec<WorkOrderEvent>, DomainError> {
        self.check_token(token)?;
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
            WorkOrderCommand::Start { executor, token } => self.start(executor, *token, at),
            WorkOrderCommand::Renew { token, lease_seconds } => self.renew(*token, *lease_seconds, at),
            WorkOrderCommand::Complete { token, result } => {
                self.check_token(*token)?;
                self.ensure_can_move(WorkOrderState::Completed)?;
                Ok(vec![WorkOrderEvent::Completed {
                    result: result.clone(),
                    at,
                }])
            }
            WorkOrderCommand::Fail(Failure {
                token,
                error,
                retryable,
            }) => {
                self.check_token(*token)?;
                self.fail(error.as_str(), *retryable, context)
            }
            WorkOrderCommand::ExpireLease => {
                let expired = self.lease.as_ref().is_some_and(|lease| lease.expires_at <= at);
                if !expired {
                    return Err(DomainError::RuleViolated("the lease has not expired".into()));
                }
                self.fail(LEASE_EXPIRED, true, context)
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
                unique_key,
                ..
            } => {
                self.kind = Some(kind.clone());
                self.unique_key = unique_key.clone();
                self.max_attempts = *max_attempts;
                self.submitted_at = Some(*submitted_at);
            }
            WorkOrderEvent::Leased { lease, attempt, .. } => {
                self.lease = Some(lease.clone());
                self.attempt = *attempt;
                self.next_attempt_at = None;
            }
            WorkOrderEvent::Started { .. } => {}
            WorkOrderEvent::LeaseRenewed { expires_at, .. } => {
                if let Some(lease) = &mut self.lease {
                    lease.expires_at = *expires_at;
                }
            }
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
        if let Some(state) = event.target_state() {
            self.state = Some(state);
        }
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
            unique_key: None,
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
    /// The calls of the holder of the first lease (token 1), unless said otherwise.
    fn start() -> WorkOrderCommand {
        WorkOrderCommand::Start {
            executor: executor("exec-1"),
            token: 1,
        }
    }
    fn fail_with(token: LeaseToken, retryable: bool) -> WorkOrderCommand {
        WorkOrderCommand::Fail(Failure {
            token,
            error: RequiredText::parse("boom").unwrap(),
            retryable,
        })
    }
    fn fail(retryable: bool) -> WorkOrderCommand {
        fail_with(1, retryable)
    }
    fn complete_with(token: LeaseToken) -> WorkOrderCommand {
        WorkOrderCommand::Complete {
            token,
            result: serde_json::json!({}),
        }
    }
    fn complete() -> WorkOrderCommand {
        complete_with(1)
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
            execute(&mut order, &fail_with(attempt, true), &ctx(3)).unwrap();
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
        execute(&mut order, &fail_with(3, true), &ctx(3)).unwrap();
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
            token: 1,
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
    fn a_stale_token_is_refused_and_changes_nothing() {
        // Attempt 1 expires while its holder is slow; attempt 2 is leased to another executor.
        let mut order = order_in(Running);
        execute(&mut order, &WorkOrderCommand::ExpireLease, &ctx(10)).unwrap();
        let due = DecisionContext { now: at(30), ..ctx(30) };
        execute(&mut order, &WorkOrderCommand::Requeue, &due).unwrap();
        execute(&mut order, &lease(), &ctx(31)).unwrap();
        assert_eq!(order.attempt, 2);
        let renew = |token| WorkOrderCommand::Renew {
            token,
            lease_seconds: Bounded::parse(60).unwrap(),
        };
        let stale = [
            WorkOrderCommand::Start {
                executor: executor("exec-1"),
                token: 1,
            },
            renew(1),
            complete_with(1),
            fail_with(1, false),
        ];
        for command in &stale {
            let before = order.clone();
            assert!(
                matches!(order.decide(command, &ctx(32)), Err(DomainError::StaleLease(_))),
                "{command:?}"
            );
            assert_eq!(order, before);
        }
        // The current holder goes on.
        execute(&mut order, &renew(2), &ctx(32)).unwrap();
        assert_eq!(order.lease.as_ref().map(|l| l.expires_at), Some(at(33)));
        execute(
            &mut order,
            &WorkOrderCommand::Start {
                executor: executor("exec-1"),
                token: 2,
            },
            &ctx(32),
        )
        .unwrap();
        execute(&mut order, &complete_with(2), &ctx(33)).unwrap();
        assert_eq!(order.state, Some(Completed));
        // Once final, no token is current.
        assert!(matches!(
            order.decide(&complete_with(2), &ctx(34)),
            Err(DomainError::StaleLease(_))
        ));
    }

    #[test]
    fn a_renewal_moves_the_expiry_and_keeps_the_state() {
        let mut order = order_in(Leased);
        let renew = WorkOrderCommand::Renew {
            token: 1,
            lease_seconds: Bounded::parse(600).unwrap(),
        };
        execute(&mut order, &renew, &ctx(5)).unwrap();
        assert_eq!(order.state, Some(Leased));
        assert_eq!(order.lease.as_ref().map(|l| l.expires_at), Some(at(15)));
        assert!(order.decide(&WorkOrderCommand::ExpireLease, &ctx(14)).is_err());
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
    fn a_second_submission_with_the_key_of_the_first_changes_nothing() {
        let keyed = |payload| Submission {
            unique_key: Some(Name::parse("import:7").unwrap()),
            payload,
            ..submission(3)
        };
        let mut order = WorkOrder::default();
        execute(
            &mut order,
            &WorkOrderCommand::Submit(keyed(serde_json::json!(1))),
            &ctx(0),
        )
        .unwrap();
        let again = WorkOrderCommand::Submit(keyed(serde_json::json!(2)));
        assert_eq!(order.decide(&again, &ctx(1)), Ok(Vec::new()));
        // A key is used once: after the order is done, the key still answers it.
        for step in [lease(), start(), complete()] {
            execute(&mut order, &step, &ctx(2)).unwrap();
        }
        assert_eq!(order.decide(&again, &ctx(9)), Ok(Vec::new()));
        // A submission without the key on an existing order is refused.
        assert!(matches!(
            order.decide(&WorkOrderCommand::Submit(submission(3)), &ctx(9)),
            Err(DomainError::AlreadyExists { .. })
        ));
        assert_eq!(unique_order_id("import:7"), unique_order_id("import:7"));
        assert_ne!(unique_order_id("import:7"), unique_order_id("import:8"));
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
