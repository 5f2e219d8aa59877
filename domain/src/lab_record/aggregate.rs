//! LabRecord state, decisions and the fold of its events.

use super::commands::{LabObservation, LabRecordCommand};
use super::events::{LabDetails, LabRecordEvent, LabState};
use crate::kernel::{record_change, Aggregate, ChangedFields, DecisionContext, DomainError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Namespace of the UUIDv5 lab record ids; changing it would orphan every stored lab record.
const LAB_RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x6c61_626c_6574_4c61_6252_6563_6f72_6401);

/// The lab record id of `lab_id` on `worker_id`: the same pair always gives the same id.
pub fn lab_record_id(worker_id: Uuid, lab_id: &str) -> Uuid {
    let name = format!("{worker_id}/{lab_id}");
    Uuid::new_v5(&LAB_RECORD_NAMESPACE, name.as_bytes())
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LabRecord {
    pub exists: bool,
    pub worker_id: Uuid,
    pub lab_id: String,
    pub details: LabDetails,
    pub state: Option<LabState>,
    pub cml_created_at: Option<DateTime<Utc>>,
    pub cml_modified_at: Option<DateTime<Utc>>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl LabRecord {
    fn is_present(&self) -> bool {
        self.exists && self.removed_at.is_none()
    }

    fn observe(&self, seen: &LabObservation, observed_at: DateTime<Utc>) -> Vec<LabRecordEvent> {
        if !self.is_present() {
            return vec![LabRecordEvent::Discovered {
                worker_id: seen.worker_id,
                lab_id: seen.lab_id.to_string(),
                details: seen.details.clone(),
                state: seen.state,
                cml_created_at: seen.cml_created_at,
                cml_modified_at: seen.cml_modified_at,
                discovered_at: observed_at,
            }];
        }
        let mut events = Vec::new();
        let changed = changed_details(&self.details, &seen.details);
        if !changed.is_empty() {
            events.push(LabRecordEvent::DetailsChanged {
                changed_fields: changed,
                details: seen.details.clone(),
                cml_modified_at: seen.cml_modified_at,
                changed_at: observed_at,
            });
        }
        if self.state != Some(seen.state) {
            events.push(LabRecordEvent::StateChanged {
                previous: self.state.unwrap_or(seen.state),
                new: seen.state,
                changed_at: observed_at,
            });
        }
        events
    }
}

fn changed_details(old: &LabDetails, new: &LabDetails) -> ChangedFields {
    let mut changes = ChangedFields::new();
    record_change(&mut changes, "title", &old.title, &new.title);
    record_change(&mut changes, "description", &old.description, &new.description);
    record_change(&mut changes, "notes", &old.notes, &new.notes);
    record_change(&mut changes, "owner_username", &old.owner_username, &new.owner_username);
    record_change(&mut changes, "owner_fullname", &old.owner_fullname, &new.owner_fullname);
    record_change(&mut changes, "node_count", &old.node_count, &new.node_count);
    record_change(&mut changes, "link_count", &old.link_count, &new.link_count);
    record_change(&mut changes, "groups", &old.groups, &new.groups);
    changes
}

impl Aggregate for LabRecord {
    const KIND: crate::AggregateKind = crate::AggregateKind::LabRecord;
    type Event = LabRecordEvent;
    type Command = LabRecordCommand;

    fn decide(
        &self,
        command: &LabRecordCommand,
        context: &DecisionContext,
    ) -> Result<Vec<LabRecordEvent>, DomainError> {
        match command {
            LabRecordCommand::Observe(seen) => {
                if self.exists && (self.worker_id != seen.worker_id || self.lab_id != seen.lab_id.as_str()) {
                    return Err(DomainError::RuleViolated(
                        "observation addresses a different lab than this record".into(),
                    ));
                }
                Ok(self.observe(seen, context.now))
            }
            LabRecordCommand::Remove { reason } => {
                if !self.exists {
                    return Err(DomainError::NotFound {
                        aggregate: Self::KIND.name(),
                    });
                }
                if self.removed_at.is_some() {
                    return Err(DomainError::RuleViolated("lab record is already removed".into()));
                }
                Ok(vec![LabRecordEvent::Removed {
                    reason: *reason,
                    removed_at: context.now,
                }])
            }
        }
    }

    fn apply(&mut self, event: &LabRecordEvent) {
        match event {
            LabRecordEvent::Discovered {
                worker_id,
                lab_id,
                details,
                state,
                cml_created_at,
                cml_modified_at,
                discovered_at,
            } => {
                self.exists = true;
                self.worker_id = *worker_id;
                self.lab_id = lab_id.clone();
                self.details = details.clone();
                self.state = Some(*state);
                self.cml_created_at = *cml_created_at;
                self.cml_modified_at = *cml_modified_at;
                self.first_seen_at.get_or_insert(*discovered_at);
                self.removed_at = None;
            }
            LabRecordEvent::DetailsChanged {
                details,
                cml_modified_at,
                ..
            } => {
                self.details = details.clone();
                self.cml_modified_at = *cml_modified_at;
            }
            LabRecordEvent::StateChanged { new, .. } => self.state = Some(*new),
            LabRecordEvent::Removed { removed_at, .. } => self.removed_at = Some(*removed_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab_record::RemovalReason;
    use crate::testing::{given, Scenario};
    use crate::values::LabId;

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-01T10:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn observation(state: LabState) -> LabObservation {
        LabObservation {
            worker_id: Uuid::from_u128(7),
            lab_id: LabId::parse("a1b2").unwrap(),
            details: LabDetails {
                title: "CCNA lab".into(),
                node_count: 3,
                groups: vec!["students".into()],
                ..LabDetails::default()
            },
            state,
            cml_created_at: Some(at(0)),
            cml_modified_at: Some(at(1)),
        }
    }

    fn observe(state: LabState) -> LabRecordCommand {
        LabRecordCommand::Observe(observation(state))
    }

    /// A record discovered stopped, at minute 2.
    fn discovered() -> Scenario<LabRecord> {
        given([]).at(at(2)).after([observe(LabState::Stopped)])
    }

    #[test]
    fn id_is_deterministic_and_distinct_per_pair() {
        let w = Uuid::from_u128(1);
        assert_eq!(lab_record_id(w, "x"), lab_record_id(w, "x"));
        assert_ne!(lab_record_id(w, "x"), lab_record_id(w, "y"));
        assert_ne!(lab_record_id(w, "x"), lab_record_id(Uuid::from_u128(2), "x"));
    }

    #[test]
    fn first_observation_discovers_the_lab() {
        let (record, events) = given::<LabRecord>([])
            .at(at(2))
            .when(observe(LabState::Stopped))
            .events();
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], LabRecordEvent::Discovered { state: LabState::Stopped, lab_id, .. } if lab_id == "a1b2")
        );
        assert_eq!(record.state().state, Some(LabState::Stopped));
        assert_eq!(record.state().first_seen_at, Some(at(2)));
    }

    #[test]
    fn unchanged_observation_emits_nothing() {
        discovered().when(observe(LabState::Stopped)).then([]);
    }

    #[test]
    fn state_change_is_recorded_with_previous_and_new() {
        discovered()
            .when(observe(LabState::Started))
            .then([LabRecordEvent::StateChanged {
                previous: LabState::Stopped,
                new: LabState::Started,
                changed_at: at(2),
            }]);
    }

    #[test]
    fn details_change_lists_only_changed_fields() {
        let mut seen = observation(LabState::Stopped);
        seen.details.title = "CCNP lab".into();
        seen.details.node_count = 5;
        let (record, events) = discovered().when(LabRecordCommand::Observe(seen)).events();
        let LabRecordEvent::DetailsChanged { changed_fields, .. } = &events[0] else {
            panic!("expected details_changed, got {events:?}");
        };
        assert_eq!(changed_fields.len(), 2);
        assert_eq!(changed_fields["title"].old, "CCNA lab");
        assert_eq!(changed_fields["title"].new, "CCNP lab");
        assert_eq!(changed_fields["node_count"].new, 5);
        assert_eq!(record.state().details.node_count, 5);
    }

    #[test]
    fn details_and_state_change_together_give_two_events() {
        let mut seen = observation(LabState::Booted);
        seen.details.notes = "ready".into();
        let (_, events) = discovered().when(LabRecordCommand::Observe(seen)).events();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn remove_requires_existing_and_present_record() {
        let remove = LabRecordCommand::Remove {
            reason: RemovalReason::VanishedFromCml,
        };
        given::<LabRecord>([])
            .when(remove.clone())
            .then_error(DomainError::NotFound {
                aggregate: "lab_record",
            });
        let removed = discovered()
            .at(at(5))
            .when(remove.clone())
            .then([LabRecordEvent::Removed {
                reason: RemovalReason::VanishedFromCml,
                removed_at: at(5),
            }]);
        assert_eq!(removed.state().removed_at, Some(at(5)));
        assert!(matches!(
            removed.when(remove).decided(),
            Err(DomainError::RuleViolated(_))
        ));
    }

    #[test]
    fn observing_a_removed_lab_discovers_it_again() {
        let removed = discovered().at(at(5)).after([LabRecordCommand::Remove {
            reason: RemovalReason::VanishedFromCml,
        }]);
        let (record, events) = removed.when(observe(LabState::Stopped)).events();
        assert!(matches!(events[0], LabRecordEvent::Discovered { .. }));
        assert_eq!(record.state().removed_at, None);
        assert_eq!(record.state().first_seen_at, Some(at(2)));
    }

    #[test]
    fn observation_with_empty_lab_id_is_invalid() {
        // A blank lab id cannot become a command at all: the value refuses it.
        assert_eq!(LabId::parse(" ").unwrap_err(), "must not be empty");
    }

    #[test]
    fn events_round_trip_through_their_wire_form() {
        use crate::kernel::{decode_event, encode_event, DomainEvent};
        let (_, events) = given::<LabRecord>([]).when(observe(LabState::Queued)).events();
        let payload = encode_event(&events[0]).unwrap();
        assert!(payload.contains("\"title\":\"CCNA lab\""));
        assert!(!payload.contains("lab_record.discovered"));
        let back: LabRecordEvent = decode_event(events[0].event_type(), events[0].schema_version(), &payload).unwrap();
        assert_eq!(back, events[0]);
    }
}
