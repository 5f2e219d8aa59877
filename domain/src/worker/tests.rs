//! Worker aggregate tests: the status machine, registration, monitoring figures recorded only
//! when they move, activity and idle detection.

use super::*;
use crate::kernel::{decode_event, encode_event, Aggregate, DecisionContext, DomainError, DomainEvent};
use crate::values::{FreeText, Name};
use chrono::{DateTime, Duration, Utc};

/// A command and the context it is decided in.
type Timed = (WorkerCommand, DecisionContext);

/// `command`, decided at minute `minute` for alice.
fn timed(command: WorkerCommand, minute: i64) -> Timed {
    let context = DecisionContext {
        now: at(minute),
        actor: "alice".into(),
        jitter: 0.5,
    };
    (command, context)
}

fn execute(worker: &mut Worker, (command, context): &Timed) -> Result<Vec<WorkerEvent>, DomainError> {
    crate::testing::execute(worker, command, context)
}

fn decide(worker: &Worker, (command, context): &Timed) -> Result<Vec<WorkerEvent>, DomainError> {
    worker.decide(command, context)
}

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minute)
}

fn registration(endpoint: Option<&str>) -> Registration {
    Registration {
        name: Name::parse("worker-1").unwrap(),
        region: Name::parse("eu-west-1").unwrap(),
        endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
        template_name: Some(Name::parse("standard").unwrap()),
        instance_id: None,
        declared_capacity: Capacity {
            cpu_cores: 32,
            memory_gb: 128,
            storage_gb: 500,
            max_nodes: 100,
        },
        insecure_tls: false,
    }
}

fn registered() -> Worker {
    let mut worker = Worker::default();
    execute(
        &mut worker,
        &timed(
            WorkerCommand::Register(registration(Some("https://cml-1.example.net"))),
            0,
        ),
    )
    .unwrap();
    worker
}

fn change(to: WorkerStatus, minute: i64) -> Timed {
    let reason = FreeText::parse("test").unwrap();
    timed(WorkerCommand::ChangeStatus { to, reason }, minute)
}

fn metrics(cpu: f64, labs: u32) -> WorkerMetrics {
    WorkerMetrics {
        cpu_percent: cpu,
        memory_percent: 40.0,
        disk_percent: 10.0,
        labs_count: labs,
        running_nodes: 20,
    }
}

fn observation(status: ServiceStatus, metrics: Option<WorkerMetrics>, minute: i64) -> Timed {
    let seen = ServiceObservation {
        service_status: status,
        cml_version: Some("2.9.0".into()),
        license: None,
        metrics,
        credentials_refused: None,
    };
    timed(WorkerCommand::RecordObservation(seen), minute)
}

fn login_seen(refused: bool, minute: i64) -> Timed {
    let seen = ServiceObservation {
        service_status: ServiceStatus::Available,
        cml_version: Some("2.9.0".into()),
        license: None,
        metrics: None,
        credentials_refused: Some(refused),
    };
    timed(WorkerCommand::RecordObservation(seen), minute)
}

#[test]
fn refused_credentials_are_recorded_once_and_cleared_by_an_accepted_login_or_new_credentials() {
    let mut worker = registered();
    execute(&mut worker, &observation(ServiceStatus::Available, None, 1)).unwrap();
    let refused = execute(&mut worker, &login_seen(true, 2)).unwrap();
    assert_eq!(refused, vec![WorkerEvent::CredentialsRefused { refused_at: at(2) }]);
    assert!(worker.credentials_refused);
    assert!(
        execute(&mut worker, &login_seen(true, 3)).unwrap().is_empty(),
        "said once"
    );
    let accepted = execute(&mut worker, &login_seen(false, 4)).unwrap();
    assert_eq!(accepted, vec![WorkerEvent::CredentialsAccepted { accepted_at: at(4) }]);
    assert!(!worker.credentials_refused);
    execute(&mut worker, &login_seen(true, 5)).unwrap();
    execute(&mut worker, &timed(WorkerCommand::RecordCredentialsChanged, 6)).unwrap();
    assert!(!worker.credentials_refused, "new credentials are untried");
}

#[test]
fn a_server_with_an_endpoint_registers_running_and_one_without_pending() {
    let worker = registered();
    assert_eq!(worker.status, Some(WorkerStatus::Running));
    assert!(worker.idle_detection_enabled);
    assert!(!worker.can_take_work(), "CML not yet seen available");
    let mut pending = Worker::default();
    execute(&mut pending, &timed(WorkerCommand::Register(registration(None)), 0)).unwrap();
    assert_eq!(pending.status, Some(WorkerStatus::Pending));
    assert_eq!(
        execute(&mut pending, &timed(WorkerCommand::Register(registration(None)), 0)),
        Err(DomainError::AlreadyExists {
            aggregate: "cml_worker"
        })
    );
}

#[test]
fn registration_needs_a_name_and_a_region() {
    // A blank region cannot become a registration at all: the value refuses it.
    assert_eq!(Name::<64>::parse(" ").unwrap_err(), "must not be empty");
}

#[test]
fn drain_cancel_stop_follow_the_status_machine() {
    let mut worker = registered();
    execute(&mut worker, &change(WorkerStatus::Draining, 1)).unwrap();
    assert_eq!(
        execute(&mut worker, &change(WorkerStatus::Draining, 2)),
        Ok(vec![]),
        "repeat is a no-op"
    );
    execute(&mut worker, &change(WorkerStatus::Running, 3)).unwrap();
    execute(&mut worker, &change(WorkerStatus::Stopping, 4)).unwrap();
    assert_eq!(
        execute(&mut worker, &change(WorkerStatus::Draining, 5)),
        Err(DomainError::InvalidTransition {
            aggregate: "cml_worker",
            from: "stopping".into(),
            to: "draining".into()
        })
    );
    execute(&mut worker, &change(WorkerStatus::Terminated, 6)).unwrap();
    assert_eq!(worker.terminated_at, Some(at(6)));
    assert!(matches!(
        decide(&worker, &observation(ServiceStatus::Available, None, 7)),
        Err(DomainError::RuleViolated(_))
    ));
    assert!(decide(&Worker::default(), &change(WorkerStatus::Running, 1)).is_err());
}

#[test]
fn a_worker_takes_work_once_its_service_is_available() {
    let mut worker = registered();
    let events = execute(
        &mut worker,
        &observation(ServiceStatus::Available, Some(metrics(10.0, 4)), 1),
    )
    .unwrap();
    assert_eq!(events.len(), 2, "service status and first figures: {events:?}");
    assert!(worker.can_take_work());
    assert_eq!(worker.cml_version.as_deref(), Some("2.9.0"));
}

#[test]
fn monitoring_records_only_figures_that_moved_more_than_five_percent() {
    let mut worker = registered();
    execute(
        &mut worker,
        &observation(ServiceStatus::Available, Some(metrics(10.0, 40)), 1),
    )
    .unwrap();
    // 4.9 points of CPU and 2 labs of 40 (5 %) are noise.
    assert_eq!(
        execute(
            &mut worker,
            &observation(ServiceStatus::Available, Some(metrics(14.9, 42)), 2)
        ),
        Ok(vec![])
    );
    let events = execute(
        &mut worker,
        &observation(ServiceStatus::Available, Some(metrics(15.1, 40)), 3),
    )
    .unwrap();
    assert!(matches!(events[..], [WorkerEvent::MetricsRecorded { .. }]));
    assert_eq!(worker.metrics.unwrap().cpu_percent, 15.1);
    let events = execute(
        &mut worker,
        &observation(ServiceStatus::Available, Some(metrics(15.1, 43)), 4),
    )
    .unwrap();
    assert_eq!(events.len(), 1, "3 labs of 40 is 7.5 %");
    // A status change is recorded even when the figures are still.
    let events = execute(&mut worker, &observation(ServiceStatus::Error, None, 5)).unwrap();
    assert!(matches!(
        events[0],
        WorkerEvent::ServiceStatusChanged {
            previous: ServiceStatus::Available,
            new: ServiceStatus::Error,
            ..
        }
    ));
    assert_eq!(worker.metrics.unwrap().labs_count, 43, "figures not observed are kept");
}

#[test]
fn counts_from_zero_move_on_any_change() {
    assert!(figures_moved(&metrics(0.0, 0), &metrics(0.0, 1)));
    assert!(!figures_moved(&metrics(0.0, 100), &metrics(0.0, 105)));
    assert!(figures_moved(&metrics(0.0, 100), &metrics(0.0, 106)));
}

fn activity(minute: i64, category: &str) -> Activity {
    Activity {
        at: at(minute),
        category: category.into(),
        user_id: Some("8f3c0a52-1111-4c8e-9d5e-000000000001".into()),
        lab_id: None,
    }
}

#[test]
fn activity_keeps_the_newest_ten_and_ignores_what_it_has_seen() {
    let mut worker = registered();
    let first: Vec<Activity> = (1..=8).map(|m| activity(m, "start_node")).collect();
    execute(
        &mut worker,
        &timed(
            WorkerCommand::RecordActivity {
                activities: first.clone(),
            },
            0,
        ),
    )
    .unwrap();
    assert_eq!(worker.last_activity_at, Some(at(8)));
    assert_eq!(
        execute(
            &mut worker,
            &timed(WorkerCommand::RecordActivity { activities: first }, 0)
        ),
        Ok(vec![])
    );
    let more: Vec<Activity> = (9..=12).map(|m| activity(m, "stop_lab")).collect();
    execute(
        &mut worker,
        &timed(WorkerCommand::RecordActivity { activities: more }, 0),
    )
    .unwrap();
    assert_eq!(worker.recent_activity.len(), RECENT_ACTIVITY_LIMIT);
    assert_eq!(worker.recent_activity[0].at, at(12));
    assert_eq!(worker.recent_activity[9].at, at(3));
}

#[test]
fn telemetry_of_automation_and_other_categories_is_not_activity() {
    assert!(counts_as_activity(
        "start_lab",
        Some("8f3c0a52-1111-4c8e-9d5e-000000000001")
    ));
    assert!(counts_as_activity("user_activity", None));
    assert!(!counts_as_activity(
        "start_lab",
        Some("00000000-0000-4000-a000-000000000000")
    ));
    assert!(!counts_as_activity("system_stats", None));
    assert!(!counts_as_activity("running_nodes", None));
}

#[test]
fn idle_after_the_timeout_is_reported_once_per_quiet_period() {
    let policy = IdlePolicy::default();
    let mut worker = registered();
    execute(
        &mut worker,
        &timed(
            WorkerCommand::RecordActivity {
                activities: vec![activity(10, "start_lab")],
            },
            0,
        ),
    )
    .unwrap();
    let status = worker.idle_status(at(69), policy);
    assert!(!status.idle, "{}", status.reason);
    assert_eq!(status.idle_minutes, 59);
    assert!(worker.idle_status(at(70), policy).idle);
    let events = execute(&mut worker, &timed(WorkerCommand::DetectIdle { policy }, 75)).unwrap();
    assert!(matches!(
        events[..],
        [WorkerEvent::IdleDetected { idle_minutes: 65, .. }]
    ));
    assert_eq!(
        execute(&mut worker, &timed(WorkerCommand::DetectIdle { policy }, 90)),
        Ok(vec![])
    );
    // New activity starts a new quiet period, reported again after its own timeout.
    execute(
        &mut worker,
        &timed(
            WorkerCommand::RecordActivity {
                activities: vec![activity(100, "user_activity")],
            },
            0,
        ),
    )
    .unwrap();
    assert_eq!(
        execute(&mut worker, &timed(WorkerCommand::DetectIdle { policy }, 120)),
        Ok(vec![])
    );
    assert_eq!(
        execute(&mut worker, &timed(WorkerCommand::DetectIdle { policy }, 160))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn idle_detection_off_or_a_stopped_worker_or_a_snooze_is_never_idle() {
    let policy = IdlePolicy::default();
    let mut worker = registered();
    execute(
        &mut worker,
        &timed(WorkerCommand::SetIdleDetection { enabled: false }, 1),
    )
    .unwrap();
    let status = worker.idle_status(at(500), policy);
    assert!(!status.idle);
    assert_eq!(status.reason, "idle detection is off");
    execute(
        &mut worker,
        &timed(WorkerCommand::SetIdleDetection { enabled: true }, 2),
    )
    .unwrap();
    assert!(worker.idle_status(at(500), policy).idle);
    execute(&mut worker, &change(WorkerStatus::Stopping, 501)).unwrap();
    execute(&mut worker, &change(WorkerStatus::Stopped, 502)).unwrap();
    assert!(!worker.idle_status(at(600), policy).idle);
    execute(&mut worker, &change(WorkerStatus::Starting, 600)).unwrap();
    execute(&mut worker, &change(WorkerStatus::Running, 605)).unwrap();
    let status = worker.idle_status(at(660), policy);
    assert!(!status.idle && status.snoozed_until == Some(at(665)), "{status:?}");
    assert!(worker.idle_status(at(665), policy).idle);
}

#[test]
fn every_event_round_trips_through_its_wire_form() {
    let mut worker = Worker::default();
    let register = WorkerCommand::Register(registration(Some("https://x")));
    let mut events = execute(&mut worker, &timed(register, 0)).unwrap();
    events.extend(
        execute(
            &mut worker,
            &observation(ServiceStatus::Available, Some(metrics(1.0, 1)), 1),
        )
        .unwrap(),
    );
    events.extend(
        execute(
            &mut worker,
            &timed(
                WorkerCommand::RecordLabsSynced {
                    counts: SyncCounts {
                        labs: 3,
                        created: 1,
                        ..SyncCounts::default()
                    },
                },
                2,
            ),
        )
        .unwrap(),
    );
    events.extend(
        execute(
            &mut worker,
            &timed(
                WorkerCommand::RecordActivity {
                    activities: vec![activity(3, "start_lab")],
                },
                0,
            ),
        )
        .unwrap(),
    );
    for event in events {
        let payload = encode_event(&event).unwrap();
        let back: WorkerEvent = decode_event(event.event_type(), event.schema_version(), &payload).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn credentials_changes_are_recorded_without_the_credentials_and_not_after_termination() {
    let record = timed(WorkerCommand::RecordCredentialsChanged, 3);
    assert_eq!(
        decide(&Worker::default(), &record),
        Err(DomainError::NotFound {
            aggregate: "cml_worker"
        })
    );
    let mut worker = registered();
    let events = execute(&mut worker, &record.clone()).unwrap();
    assert_eq!(worker.credentials_changed_at, Some(at(3)));
    let payload = encode_event(&events[0]).unwrap();
    assert_eq!(payload, r#"{"changed_by":"alice","changed_at":"2026-01-01T10:03:00Z"}"#);
    execute(&mut worker, &change(WorkerStatus::Terminated, 4)).unwrap();
    assert!(matches!(decide(&worker, &record), Err(DomainError::RuleViolated(_))));
}
