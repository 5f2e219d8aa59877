//! Property tests of the domain: invariants that are easy to state, checked over many generated
//! cases instead of a few chosen ones.

use crate::kernel::DecisionContext;
use crate::lablet_instance::{InstanceRequest, InstanceState, LabletInstance, LabletInstanceCommand};
use crate::testing::{execute, test_context};
use crate::values::{Name, Timeslot};
use crate::work_order::RetryPolicy;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use uuid::Uuid;

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_442_000, 0).unwrap_or_default() + Duration::minutes(minute)
}

fn ctx(minute: i64) -> DecisionContext {
    DecisionContext {
        now: at(minute),
        ..test_context()
    }
}

fn requested() -> LabletInstance {
    let mut instance = LabletInstance::default();
    let request = InstanceRequest {
        definition_id: Uuid::from_u128(1),
        definition_version: Name::parse("1.0.0").unwrap(),
        owner_id: Name::parse("alice").unwrap(),
        reservation_id: Name::parse("r-1").unwrap(),
        timeslot: Timeslot::new(at(60), at(120)).unwrap(),
    };
    execute(&mut instance, &LabletInstanceCommand::Request(request), &ctx(0)).unwrap();
    instance
}

proptest! {
    /// Over any sequence of attempted moves, `decide` allows exactly what the state machine
    /// allows, and the state after each allowed move is its target.
    #[test]
    fn the_instance_state_machine_and_decide_agree(moves in proptest::collection::vec(0..InstanceState::ALL.len(), 1..40)) {
        let mut instance = requested();
        for (i, index) in moves.into_iter().enumerate() {
            let to = InstanceState::ALL[index];
            let from = instance.state.unwrap();
            let command = LabletInstanceCommand::Transition { to, reason: None, worker_id: None };
            let result = execute(&mut instance, &command, &ctx(i as i64));
            prop_assert_eq!(result.is_ok(), from.can_move_to(to), "{} -> {}", from, to);
            if result.is_ok() {
                prop_assert_eq!(instance.state, Some(to));
            } else {
                prop_assert_eq!(instance.state, Some(from), "a refused move changes nothing");
            }
        }
    }

    /// A retry waits between half and all of `base × 2^(attempt−1)` capped at the maximum, and
    /// never less for a later attempt with the same jitter.
    #[test]
    fn retry_delays_stay_within_their_bounds(
        base_ms in 1i64..60_000,
        max_ms in 1i64..3_600_000,
        attempt in 1u32..64,
        jitter in proptest::num::f64::ANY,
    ) {
        let policy = RetryPolicy { base_delay: Duration::milliseconds(base_ms), max_delay: Duration::milliseconds(max_ms) };
        let delay = policy.delay(attempt, jitter).num_milliseconds();
        let full = (base_ms as f64 * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(max_ms as f64);
        prop_assert!(delay >= (full / 2.0) as i64 - 1 && delay <= full as i64, "{delay} outside [{}, {full}]", full / 2.0);
        let sane_jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        prop_assert!(policy.delay(attempt + 1, sane_jitter) >= policy.delay(attempt, sane_jitter));
    }
}
