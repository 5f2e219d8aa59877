//! LabletInstance state, decisions and the fold of its events.

use super::commands::{CheckedScore, InstanceRequest, LabletInstanceCommand};
use super::events::{GradingScore, LabletInstanceEvent, PlacementSummary, StateChange};
use super::pipeline::StepReport;
use super::state::InstanceState;
use crate::kernel::{Aggregate, DecisionContext, DomainError};
use crate::worker::Capacity;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Namespace of instance ids derived from reservation ids.
const INSTANCE_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_626c_6574_496e_7374_616e_6365_0001);

/// The instance id of a reservation. Reservation ids are unique, so the instance stream of a
/// reservation can be created only once: a second request for it is a conflict, not a twin.
pub fn instance_id_for_reservation(reservation_id: &str) -> Uuid {
    Uuid::new_v5(&INSTANCE_NAMESPACE, reservation_id.as_bytes())
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LabletInstance {
    pub owner_id: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub state: Option<InstanceState>,
    pub timeslot_end: Option<DateTime<Utc>>,
    pub worker_id: Option<Uuid>,
    /// Port name → port on the worker, once placed.
    pub ports: BTreeMap<String, u16>,
    /// Why no worker could take it, as last recorded while pending.
    pub capacity_reason: Option<String>,
    pub score: Option<GradingScore>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub terminated_at: Option<DateTime<Utc>>,
    pub definition_id: Option<Uuid>,
    pub definition_version: Option<String>,
    pub reservation_id: Option<String>,
    pub timeslot_start: Option<DateTime<Utc>>,
    /// The lab on the worker, once imported.
    pub lab_id: Option<String>,
    /// Whether the lab was deleted from its worker.
    pub lab_removed: bool,
    /// The work orders whose outcome is recorded.
    pub recorded_steps: std::collections::BTreeSet<Uuid>,
    /// Whether the current collection was asked of the grading system.
    pub assessment_requested: bool,
}

impl LabletInstance {
    pub(super) fn current(&self) -> Result<InstanceState, DomainError> {
        self.state.ok_or(DomainError::NotFound {
            aggregate: Self::KIND.name(),
        })
    }

    fn request(&self, request: &InstanceRequest, at: DateTime<Utc>) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        if self.state.is_some() {
            return Err(DomainError::AlreadyExists {
                aggregate: Self::KIND.name(),
            });
        }
        Ok(vec![LabletInstanceEvent::Requested {
            definition_id: request.definition_id,
            definition_version: request.definition_version.to_string(),
            owner_id: request.owner_id.to_string(),
            reservation_id: request.reservation_id.to_string(),
            timeslot_start: request.timeslot.start(),
            timeslot_end: request.timeslot.end(),
            requested_at: at,
        }])
    }

    fn transition(
        &self,
        to: InstanceState,
        reason: Option<String>,
        worker_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let from = self.current()?;
        if !from.can_move_to(to) {
            return Err(DomainError::InvalidTransition {
                aggregate: Self::KIND.name(),
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        let change = StateChange { from, reason, at };
        let worker_id = if to == InstanceState::Scheduled {
            worker_id
        } else {
            None
        };
        Ok(LabletInstanceEvent::entering(to, change, worker_id)
            .into_iter()
            .collect())
    }

    fn place(
        &self,
        worker_id: Uuid,
        ports: &BTreeMap<String, u16>,
        placement: &PlacementSummary,
        at: DateTime<Utc>,
    ) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let from = self.current()?;
        if from != InstanceState::Pending {
            return Err(DomainError::InvalidTransition {
                aggregate: Self::KIND.name(),
                from: from.to_string(),
                to: InstanceState::Scheduled.to_string(),
            });
        }
        Ok(vec![LabletInstanceEvent::Scheduled {
            change: StateChange {
                from,
                reason: Some(format!("placed on worker {worker_id}")),
                at,
            },
            worker_id: Some(worker_id),
            ports: ports.clone(),
            placement: Some(placement.clone()),
        }])
    }

    fn request_capacity(
        &self,
        reason: &str,
        needs: Capacity,
        placement: &PlacementSummary,
        at: DateTime<Utc>,
    ) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let state = self.current()?;
        if state != InstanceState::Pending {
            return Err(DomainError::RuleViolated(format!(
                "capacity is requested only for a pending instance, not a {state} one"
            )));
        }
        if self.capacity_reason.as_deref() == Some(reason) {
            return Ok(Vec::new());
        }
        Ok(vec![LabletInstanceEvent::CapacityRequested {
            reason: reason.to_owned(),
            needs,
            placement: placement.clone(),
            at,
        }])
    }

    fn extend(&self, new_end: DateTime<Utc>, at: DateTime<Utc>) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let state = self.current()?;
        if matches!(state, InstanceState::Archived | InstanceState::Terminated) {
            return Err(DomainError::RuleViolated(format!(
                "the timeslot of a {state} instance cannot be extended"
            )));
        }
        let previous_end = self.timeslot_end.unwrap_or(new_end);
        if new_end <= previous_end {
            return Err(DomainError::RuleViolated(format!(
                "the new end must be after the current end {}",
                previous_end.to_rfc3339()
            )));
        }
        Ok(vec![LabletInstanceEvent::TimeslotExtended {
            previous_end,
            new_end,
            at,
        }])
    }

    fn record_score(&self, score: &CheckedScore, at: DateTime<Utc>) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let state = self.current()?;
        if !matches!(
            state,
            InstanceState::Collecting | InstanceState::Grading | InstanceState::Stopping | InstanceState::Stopped
        ) {
            return Err(DomainError::RuleViolated(format!(
                "a score can be recorded only after collection started, not while {state}"
            )));
        }
        Ok(vec![LabletInstanceEvent::ScoreRecorded {
            score: score.score().clone(),
            at,
        }])
    }
}

impl Aggregate for LabletInstance {
    const KIND: crate::AggregateKind = crate::AggregateKind::LabletInstance;
    type Event = LabletInstanceEvent;
    type Command = LabletInstanceCommand;

    fn decide(
        &self,
        command: &LabletInstanceCommand,
        context: &DecisionContext,
    ) -> Result<Vec<LabletInstanceEvent>, DomainError> {
        let at = context.now;
        match command {
            LabletInstanceCommand::Request(request) => self.request(request, at),
            LabletInstanceCommand::Transition { to, reason, worker_id } => {
                let reason = reason.as_ref().map(|r| r.as_str().to_owned());
                self.transition(*to, reason, *worker_id, at)
            }
            LabletInstanceCommand::ExtendTimeslot { new_end } => self.extend(*new_end, at),
            LabletInstanceCommand::RecordScore { score } => self.record_score(score, at),
            LabletInstanceCommand::Place {
                worker_id,
                ports,
                placement,
            } => self.place(*worker_id, ports, placement, at),
            LabletInstanceCommand::RequestCapacity {
                reason,
                needs,
                placement,
            } => self.request_capacity(reason, *needs, placement, at),
            LabletInstanceCommand::RecordStep {
                step,
                work_order_id,
                outcome,
                detail,
                lab_id,
            } => self.record_step(
                StepReport {
                    step,
                    work_order_id: *work_order_id,
                    outcome: *outcome,
                    detail: detail.as_deref(),
                    lab_id: lab_id.as_deref(),
                },
                at,
            ),
            LabletInstanceCommand::RequestAssessment => self.request_assessment(at),
        }
    }

    fn apply(&mut self, event: &LabletInstanceEvent) {
        match event {
            LabletInstanceEvent::Requested {
                definition_id,
                definition_version,
                owner_id,
                reservation_id,
                timeslot_start,
                timeslot_end,
                requested_at,
            } => {
                self.owner_id = Some(owner_id.clone());
                self.requested_at = Some(*requested_at);
                self.timeslot_end = Some(*timeslot_end);
                self.timeslot_start = Some(*timeslot_start);
                self.definition_id = Some(*definition_id);
                self.definition_version = Some(definition_version.clone());
                self.reservation_id = Some(reservation_id.clone());
            }
            LabletInstanceEvent::Scheduled { worker_id, ports, .. } => {
                self.worker_id = *worker_id;
                self.ports = ports.clone();
            }
            LabletInstanceEvent::CapacityRequested { reason, .. } => self.capacity_reason = Some(reason.clone()),
            LabletInstanceEvent::Started(change) => {
                self.started_at.get_or_insert(change.at);
            }
            LabletInstanceEvent::Stopped(change) => self.stopped_at = Some(change.at),
            LabletInstanceEvent::Terminated(change) => self.terminated_at = Some(change.at),
            LabletInstanceEvent::TimeslotExtended { new_end, .. } => self.timeslot_end = Some(*new_end),
            LabletInstanceEvent::ScoreRecorded { score, .. } => self.score = Some(score.clone()),
            _ => {}
        }
        self.apply_pipeline(event);
        if let Some(state) = event.target_state() {
            self.state = Some(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, test_context};
    use crate::values::{FreeText, Name, Timeslot};
    use InstanceState::*;

    fn ctx(hour: u32) -> DecisionContext {
        DecisionContext {
            now: at(hour),
            ..test_context()
        }
    }

    fn reason(text: &str) -> Option<FreeText<1024>> {
        Some(FreeText::parse(text).unwrap())
    }

    fn at(hour: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-01T{hour:02}:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn request() -> InstanceRequest {
        InstanceRequest {
            definition_id: Uuid::from_u128(1),
            definition_version: Name::parse("1.0.0").unwrap(),
            owner_id: Name::parse("student-1").unwrap(),
            reservation_id: Name::parse("res-1").unwrap(),
            timeslot: Timeslot::new(at(10), at(11)).unwrap(),
        }
    }

    /// An instance driven into `state` along an allowed path.
    fn instance_in(state: InstanceState) -> LabletInstance {
        let path: &[InstanceState] = match state {
            Pending => &[],
            Scheduled => &[Scheduled],
            Instantiating => &[Scheduled, Instantiating],
            Running => &[Scheduled, Instantiating, Running],
            Collecting => &[Scheduled, Instantiating, Running, Collecting],
            Grading => &[Scheduled, Instantiating, Running, Collecting, Grading],
            Stopping => &[Scheduled, Instantiating, Running, Stopping],
            Stopped => &[Scheduled, Instantiating, Running, Stopping, Stopped],
            Archived => &[Scheduled, Instantiating, Running, Stopping, Stopped, Archived],
            Terminated => &[Terminated],
        };
        let moves = path.iter().map(|to| LabletInstanceCommand::Transition {
            to: *to,
            reason: None,
            worker_id: Some(Uuid::from_u128(9)),
        });
        let scenario = given::<LabletInstance>([])
            .at(at(9))
            .after([LabletInstanceCommand::Request(request())])
            .at(at(10))
            .after(moves);
        assert_eq!(scenario.state().state, Some(state));
        scenario.state().clone()
    }

    #[test]
    fn every_pair_of_states_is_allowed_or_refused_as_the_machine_says() {
        let allowed: &[(InstanceState, InstanceState)] = &[
            (Pending, Scheduled),
            (Scheduled, Instantiating),
            (Instantiating, Running),
            (Running, Collecting),
            (Running, Stopping),
            (Collecting, Grading),
            (Collecting, Stopping),
            (Grading, Stopping),
            (Stopping, Stopped),
            (Stopped, Archived),
            (Stopped, Running),
            (Archived, Terminated),
        ];
        for from in InstanceState::ALL {
            for to in InstanceState::ALL {
                let expected = allowed.contains(&(from, to)) || (to == Terminated && from != Terminated);
                let instance = instance_in(from);
                let result = instance.decide(
                    &LabletInstanceCommand::Transition {
                        to,
                        reason: reason("test"),
                        worker_id: None,
                    },
                    &ctx(12),
                );
                match result {
                    Ok(events) => {
                        assert!(expected, "{from} -> {to} should be refused");
                        let mut moved = instance.clone();
                        events.iter().for_each(|e| moved.apply(e));
                        assert_eq!(moved.state, Some(to));
                    }
                    Err(err) => {
                        assert!(!expected, "{from} -> {to} should be allowed, got {err}");
                        assert!(matches!(err, DomainError::InvalidTransition { .. }));
                    }
                }
            }
        }
    }

    #[test]
    fn terminate_records_the_state_it_left() {
        let instance = instance_in(Running);
        let events = instance
            .decide(
                &LabletInstanceCommand::Transition {
                    to: Terminated,
                    reason: reason("expired"),
                    worker_id: None,
                },
                &ctx(12),
            )
            .unwrap();
        assert!(
            matches!(&events[0], LabletInstanceEvent::Terminated(StateChange { from: Running, reason: Some(r), .. }) if r == "expired")
        );
    }

    #[test]
    fn commands_on_a_missing_instance_are_not_found() {
        let err = LabletInstance::default()
            .decide(
                &LabletInstanceCommand::Transition {
                    to: Scheduled,
                    reason: None,
                    worker_id: None,
                },
                &ctx(1),
            )
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::NotFound {
                aggregate: "lablet_instance"
            }
        );
    }

    #[test]
    fn requesting_twice_is_refused() {
        let instance = instance_in(Pending);
        assert!(matches!(
            instance.decide(&LabletInstanceCommand::Request(request()), &ctx(9)),
            Err(DomainError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn timeslot_must_end_after_it_starts() {
        // Such a request cannot be made: the timeslot refuses to exist.
        assert_eq!(
            Timeslot::new(at(10), at(10)).unwrap_err(),
            "must be after timeslot_start"
        );
    }

    #[test]
    fn scheduling_records_the_worker() {
        let instance = instance_in(Scheduled);
        assert_eq!(instance.worker_id, Some(Uuid::from_u128(9)));
    }

    #[test]
    fn timeslot_extends_only_forward_and_not_when_over() {
        let mut instance = instance_in(Running);
        let extend = |hour| LabletInstanceCommand::ExtendTimeslot { new_end: at(hour) };
        let events = instance.decide(&extend(12), &ctx(10)).unwrap();
        instance.apply(&events[0]);
        assert_eq!(instance.timeslot_end, Some(at(12)));
        assert!(matches!(
            instance.decide(&extend(12), &ctx(10)),
            Err(DomainError::RuleViolated(_))
        ));
        for state in [Archived, Terminated] {
            assert!(matches!(
                instance_in(state).decide(&extend(20), &ctx(10)),
                Err(DomainError::RuleViolated(_))
            ));
        }
    }

    #[test]
    fn score_is_recorded_only_once_collection_started_and_must_be_sane() {
        let score = GradingScore {
            total: 8.0,
            max: 10.0,
            passed: true,
            breakdown: [("ospf".to_string(), 8.0)].into(),
        };
        let record = |score: &GradingScore| LabletInstanceCommand::RecordScore {
            score: CheckedScore::parse(score.clone()).unwrap(),
        };
        for state in InstanceState::ALL {
            let result = instance_in(state).decide(&record(&score), &ctx(11));
            let allowed = matches!(state, Collecting | Grading | Stopping | Stopped);
            assert_eq!(result.is_ok(), allowed, "score in {state}");
        }
        let mut instance = instance_in(Grading);
        let events = instance.decide(&record(&score), &ctx(11)).unwrap();
        instance.apply(&events[0]);
        assert_eq!(instance.score, Some(score));
        let too_high = GradingScore {
            total: 11.0,
            max: 10.0,
            passed: true,
            breakdown: Default::default(),
        };
        // A score above its maximum cannot be recorded: it cannot even be a command.
        assert_eq!(
            CheckedScore::parse(too_high).unwrap_err(),
            vec![("total".to_owned(), "must not exceed max")]
        );
    }

    #[test]
    fn reservation_gives_a_stable_instance_id() {
        assert_eq!(instance_id_for_reservation("r"), instance_id_for_reservation("r"));
        assert_ne!(instance_id_for_reservation("r"), instance_id_for_reservation("s"));
    }

    #[test]
    fn the_scheduler_places_only_a_pending_instance_and_asks_for_capacity_once_per_reason() {
        let summary = PlacementSummary::default();
        let ask = |reason: &str| LabletInstanceCommand::RequestCapacity {
            reason: reason.into(),
            needs: Capacity::default(),
            placement: summary.clone(),
        };
        let (scenario, asked) = given::<LabletInstance>([])
            .after([LabletInstanceCommand::Request(request())])
            .when(ask("no worker can take it: 2 capacity"))
            .events();
        assert_eq!(asked.len(), 1);
        let (scenario, again) = scenario.when(ask("no worker can take it: 2 capacity")).events();
        assert!(again.is_empty(), "the same reason is not asked again");
        let (scenario, other) = scenario.when(ask("no worker can take it: 3 capacity")).events();
        assert_eq!(other.len(), 1);
        let place = LabletInstanceCommand::Place {
            worker_id: Uuid::from_u128(9),
            ports: [("ssh".to_owned(), 2001)].into_iter().collect(),
            placement: summary.clone(),
        };
        let (scenario, placed) = scenario.when(place.clone()).events();
        assert!(matches!(
            &placed[..],
            [LabletInstanceEvent::Scheduled { worker_id: Some(_), .. }]
        ));
        assert_eq!(scenario.state().state, Some(Scheduled));
        assert_eq!(scenario.state().ports.get("ssh"), Some(&2001));
        scenario.when(place).then_error(DomainError::InvalidTransition {
            aggregate: "lablet_instance",
            from: "scheduled".into(),
            to: "scheduled".into(),
        });
    }
}
