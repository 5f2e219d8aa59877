//! Capacity and ports on a worker: what fits, the lowest free ports, the personal-license
//! limit, retries that change nothing; and, over any sequence of allocations and releases, a
//! worker never over-allocated and no port held twice.

use super::*;
use crate::kernel::{DecisionContext, DomainError};
use crate::testing::execute;
use crate::values::{FreeText, Name};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use std::collections::BTreeSet;
use uuid::Uuid;

fn context() -> DecisionContext {
    DecisionContext {
        now: DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        actor: "system".into(),
        jitter: 0.5,
    }
}

fn capacity(cpu_cores: u32, memory_gb: u32, max_nodes: u32) -> Capacity {
    Capacity {
        cpu_cores,
        memory_gb,
        storage_gb: 10,
        max_nodes,
    }
}

/// A running worker with CML available, declaring 16 cores, 64 GB, 100 GB and 40 nodes.
fn ready(license: LicenseType) -> Worker {
    let mut worker = Worker::default();
    let registration = Registration {
        name: Name::parse("worker-1").unwrap(),
        region: Name::parse("eu-west-1").unwrap(),
        endpoint: Some(Endpoint::parse("https://cml-1.example.net").unwrap()),
        template_name: None,
        instance_id: None,
        declared_capacity: Capacity {
            cpu_cores: 16,
            memory_gb: 64,
            storage_gb: 100,
            max_nodes: 40,
        },
        insecure_tls: false,
    };
    execute(&mut worker, &WorkerCommand::Register(registration), &context()).unwrap();
    let seen = ServiceObservation {
        service_status: ServiceStatus::Available,
        cml_version: Some("2.9.0".into()),
        license: Some(License {
            status: "COMPLETED".into(),
            license_type: Some(license),
            expires_at: None,
        }),
        metrics: None,
        credentials_refused: None,
    };
    execute(&mut worker, &WorkerCommand::RecordObservation(seen), &context()).unwrap();
    worker
}

fn request(instance: u128, needs: Capacity, ports: &[&str]) -> WorkerCommand {
    WorkerCommand::Allocate(AllocationRequest {
        instance_id: Uuid::from_u128(instance),
        capacity: needs,
        license_affinity: Vec::new(),
        port_names: ports.iter().map(|p| Name::parse(*p).unwrap()).collect(),
    })
}

fn release(instance: u128) -> WorkerCommand {
    WorkerCommand::Release {
        instance_id: Uuid::from_u128(instance),
        reason: FreeText::parse("terminated").unwrap(),
    }
}

fn allocate(worker: &mut Worker, command: &WorkerCommand) -> Result<Vec<WorkerEvent>, DomainError> {
    execute(worker, command, &context())
}

fn ports_of(events: &[WorkerEvent]) -> Vec<u16> {
    match events {
        [WorkerEvent::CapacityAllocated { ports, .. }] => ports.values().copied().collect(),
        other => panic!("one allocation expected: {other:?}"),
    }
}

#[test]
fn an_allocation_takes_capacity_and_the_lowest_free_ports() {
    let mut worker = ready(LicenseType::Enterprise);
    let first = allocate(&mut worker, &request(1, capacity(4, 16, 5), &["console", "ssh"])).unwrap();
    assert_eq!(ports_of(&first), [2000, 2001]);
    let second = allocate(&mut worker, &request(2, capacity(4, 16, 5), &["ssh"])).unwrap();
    assert_eq!(ports_of(&second), [2002]);
    let both = Capacity {
        cpu_cores: 8,
        memory_gb: 32,
        storage_gb: 20,
        max_nodes: 10,
    };
    assert_eq!(worker.allocated_capacity, both);
    assert_eq!(worker.available_capacity().cpu_cores, 8);

    allocate(&mut worker, &release(1)).unwrap();
    assert_eq!(worker.allocated_capacity.cpu_cores, 4);
    let third = allocate(&mut worker, &request(3, capacity(1, 1, 1), &["a", "b", "c"])).unwrap();
    assert_eq!(
        ports_of(&third),
        [2000, 2001, 2003],
        "freed ports are reused, lowest first"
    );
}

#[test]
fn what_does_not_fit_is_refused_and_changes_nothing() {
    let mut worker = ready(LicenseType::Enterprise);
    allocate(&mut worker, &request(1, capacity(12, 16, 5), &[])).unwrap();
    let before = worker.clone();
    let refused = allocate(&mut worker, &request(2, capacity(5, 16, 5), &[]));
    assert!(
        matches!(&refused, Err(DomainError::RuleViolated(m)) if m.contains("cpu_cores: 5 needed, 4 available")),
        "{refused:?}"
    );
    assert_eq!(worker, before);

    let mut affinity = request(3, capacity(1, 1, 1), &[]);
    if let WorkerCommand::Allocate(request) = &mut affinity {
        request.license_affinity = vec![LicenseType::Evaluation];
    }
    assert!(
        allocate(&mut worker, &affinity).is_err(),
        "an enterprise license is not an evaluation one"
    );
}

#[test]
fn a_worker_that_takes_no_work_allocates_nothing() {
    let mut worker = ready(LicenseType::Enterprise);
    let reason = FreeText::parse("maintenance").unwrap();
    let drain = WorkerCommand::ChangeStatus {
        to: WorkerStatus::Draining,
        reason,
    };
    allocate(&mut worker, &drain).unwrap();
    let refused = allocate(&mut worker, &request(1, capacity(1, 1, 1), &[]));
    assert!(
        matches!(&refused, Err(DomainError::RuleViolated(m)) if m.contains("takes no work")),
        "{refused:?}"
    );
}

#[test]
fn a_personal_license_holds_one_instance_of_at_most_twenty_nodes() {
    let mut worker = ready(LicenseType::Personal);
    assert!(allocate(&mut worker, &request(1, capacity(1, 1, 21), &[])).is_err());
    allocate(&mut worker, &request(1, capacity(1, 1, 20), &[])).unwrap();
    let second = allocate(&mut worker, &request(2, capacity(1, 1, 1), &[]));
    assert!(
        matches!(&second, Err(DomainError::RuleViolated(m)) if m.contains("personal license")),
        "{second:?}"
    );
}

#[test]
fn retried_allocations_and_releases_change_nothing() {
    let mut worker = ready(LicenseType::Enterprise);
    allocate(&mut worker, &request(1, capacity(2, 2, 2), &["ssh"])).unwrap();
    assert!(allocate(&mut worker, &request(1, capacity(2, 2, 2), &["ssh"]))
        .unwrap()
        .is_empty());
    assert!(
        allocate(&mut worker, &request(1, capacity(3, 2, 2), &["ssh"])).is_err(),
        "a different allocation for the same instance is refused"
    );
    allocate(&mut worker, &release(1)).unwrap();
    assert!(allocate(&mut worker, &release(1)).unwrap().is_empty());
    assert_eq!(worker.allocated_capacity, Capacity::default());
    assert!(worker.allocations.ports_in_use.is_empty());
}

#[test]
fn a_batch_takes_what_fits_in_order_and_leaves_out_the_rest() {
    let mut worker = ready(LicenseType::Enterprise);
    let batch = |ids: &[u128]| {
        WorkerCommand::AllocateAll(
            ids.iter()
                .map(|id| match request(*id, capacity(6, 1, 1), &["ssh"]) {
                    WorkerCommand::Allocate(r) => r,
                    _ => unreachable!(),
                })
                .collect(),
        )
    };
    let events = allocate(&mut worker, &batch(&[1, 2, 3])).unwrap();
    assert_eq!(events.len(), 2, "16 cores take two of 6, not three");
    assert_eq!(worker.allocations.by_instance.len(), 2);
    let ports: Vec<u16> = worker
        .allocations
        .by_instance
        .values()
        .flat_map(|a| a.ports.values().copied())
        .collect();
    assert_eq!(ports, [2000, 2001], "each takes the next free port");
    assert!(
        allocate(&mut worker, &batch(&[1, 2])).unwrap().is_empty(),
        "a retried batch changes nothing"
    );
}

#[test]
fn a_port_name_twice_is_refused() {
    let mut worker = ready(LicenseType::Enterprise);
    let refused = allocate(&mut worker, &request(1, capacity(1, 1, 1), &["ssh", "ssh"]));
    assert!(matches!(
        refused,
        Err(DomainError::InvalidValue {
            field: "port_names",
            ..
        })
    ));
}

#[test]
fn an_admin_declares_capacity_and_available_never_goes_below_zero() {
    let mut worker = ready(LicenseType::Enterprise);
    allocate(&mut worker, &request(1, capacity(10, 10, 10), &[])).unwrap();
    let declare = WorkerCommand::DeclareCapacity {
        capacity: capacity(8, 64, 40),
    };
    assert_eq!(allocate(&mut worker, &declare).unwrap().len(), 1);
    assert_eq!(worker.available_capacity().cpu_cores, 0);
    assert!(
        allocate(&mut worker, &declare).unwrap().is_empty(),
        "the same capacity again is nothing"
    );
}

proptest! {
    /// Over any sequence of allocations and releases, the allocated capacity is the sum of the
    /// allocations and within the declared capacity, and no port is held twice.
    #[test]
    fn no_worker_is_over_allocated_and_no_port_is_held_twice(
        steps in proptest::collection::vec((0u128..12, 0u32..8, 0u32..30, 0u32..12, 0usize..4, any::<bool>()), 1..80)
    ) {
        let mut worker = ready(LicenseType::Enterprise);
        for (instance, cpu, memory, nodes, ports, is_release) in steps {
            let names: Vec<String> = (0..ports).map(|p| format!("p{p}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let command = if is_release { release(instance) } else { request(instance, capacity(cpu, memory, nodes), &names) };
            let before = worker.clone();
            if allocate(&mut worker, &command).is_err() {
                prop_assert_eq!(&worker, &before, "a refused command changes nothing");
            }
            let sum = worker
                .allocations
                .by_instance
                .values()
                .fold(Capacity::default(), |sum, a| sum.plus(a.capacity));
            prop_assert_eq!(worker.allocated_capacity, sum);
            let declared = worker.declared_capacity;
            prop_assert!(sum.cpu_cores <= declared.cpu_cores && sum.memory_gb <= declared.memory_gb);
            prop_assert!(sum.storage_gb <= declared.storage_gb && sum.max_nodes <= declared.max_nodes);
            let held: Vec<u16> = worker.allocations.by_instance.values().flat_map(|a| a.ports.values().copied()).collect();
            let distinct: BTreeSet<u16> = held.iter().copied().collect();
            prop_assert_eq!(held.len(), distinct.len(), "a port is held twice");
            prop_assert_eq!(&distinct, &worker.allocations.ports_in_use);
            prop_assert!(held.iter().all(|p| (2000..=9999).contains(p)));
        }
    }
}
