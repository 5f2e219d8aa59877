//! Placement with every decision durably recorded: a running application (its projections
//! keeping the read models current) with `workers` workers that take work and `reservations`
//! pending instances due now; the scheduler's pass is timed, and the fleet is then checked
//! against the worker streams: no worker holds more than it declares, no port is held twice,
//! and every allocation belongs to an instance scheduled on that worker.
//!
//! With `schedulers` > 1, that many schedulers pass at once over the same store (what two
//! replicas would do without their lease): the worker streams are what keeps them apart.

use futures_util::future::join_all;
use lablet_api::app::build;
use lablet_application::ports::ListQuery;
use lablet_application::read_model_queries::{ListDocuments, LABLET_INSTANCES};
use lablet_application::repository::AggregateRepository;
use lablet_application::scheduling::{Scheduler, SchedulerSettings};
use lablet_application::{Execute, Mediator, RequestContext};
use lablet_domain::lablet_definition::{definition_id, LabletDefinition, LabletDefinitionCommand, SyncOutcome};
use lablet_domain::lablet_definition::{ArtifactUri, NodeCount, PortSpec, Protocol, Resources, SemVer, Sha256Hex};
use lablet_domain::lablet_definition::{VersionSpec, WarmPoolDepth, DEFAULT_MAX_DURATION};
use lablet_domain::lablet_instance::{
    instance_id_for_reservation, InstanceRequest, LabletInstance, LabletInstanceCommand,
};
use lablet_domain::values::{Name, Timeslot};
use lablet_domain::worker::{Capacity, Endpoint, License, LicenseType, Registration, ServiceObservation};
use lablet_domain::worker::{ServiceStatus, Worker, WorkerCommand};
use lablet_infrastructure::Settings;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// Commands sent at once while the fleet and the reservations are made.
const SEEDING_CONCURRENCY: usize = 32;

/// What a run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurableRun {
    pub placed: usize,
    pub seconds: f64,
    pub over_allocated: usize,
    pub ports_twice: usize,
    pub stray_allocations: usize,
    /// Instances scheduled on a worker that does not hold their allocation.
    pub unallocated: usize,
}

/// Sends `commands` with a few at a time in flight.
async fn send_all<A>(mediator: &Arc<Mediator>, commands: Vec<(Uuid, A::Command)>)
where
    A: lablet_domain::Aggregate,
    Execute<A>: lablet_application::mediator::Request<Output = lablet_application::repository::CommandOutcome>,
{
    let context = RequestContext::system();
    for chunk in commands.chunks(SEEDING_CONCURRENCY) {
        let sends = chunk
            .iter()
            .map(|(id, command)| mediator.send(Execute::<A>::on(*id, command.clone()), &context));
        for outcome in join_all(sends).await {
            outcome.expect("a seeding command is accepted");
        }
    }
}

fn spec() -> VersionSpec {
    VersionSpec {
        artifact_uri: ArtifactUri::parse("https://artifacts.example.net/bench.yaml").unwrap(),
        topology_sha256: Sha256Hex::parse(SHA).unwrap(),
        resources: Resources {
            cpu_cores: 2,
            memory_gb: 8,
            storage_gb: 20,
            nested_virtualization: false,
        },
        license_affinity: Vec::new(),
        node_count: NodeCount::parse(4).unwrap(),
        ports: vec![PortSpec {
            name: Name::parse("console").unwrap(),
            protocol: Protocol::Tcp,
        }],
        grading_rules_uri: None,
        max_duration_minutes: DEFAULT_MAX_DURATION,
        warm_pool_depth: WarmPoolDepth::parse(0).unwrap(),
    }
}

/// Makes the fleet, the definition and the reservations; answers the worker ids.
async fn seed(mediator: &Arc<Mediator>, workers: usize, reservations: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..workers).map(|_| Uuid::now_v7()).collect();
    let register = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let registration = Registration {
                name: Name::parse(format!("bench-{n:05}")).unwrap(),
                region: Name::parse("eu-west-1").unwrap(),
                endpoint: Some(Endpoint::parse(&format!("https://cml-{n}.example.net")).unwrap()),
                template_name: None,
                instance_id: None,
                declared_capacity: Capacity {
                    cpu_cores: 48,
                    memory_gb: 192,
                    storage_gb: 1000,
                    max_nodes: 120,
                },
                insecure_tls: false,
            };
            (*id, WorkerCommand::Register(registration))
        })
        .collect();
    send_all::<Worker>(mediator, register).await;
    let available = ServiceObservation {
        service_status: ServiceStatus::Available,
        cml_version: Some("2.9.0".into()),
        license: Some(License {
            status: "COMPLETED".into(),
            license_type: Some(LicenseType::Enterprise),
            expires_at: None,
        }),
        metrics: None,
        credentials_refused: None,
    };
    let observe = ids
        .iter()
        .map(|id| (*id, WorkerCommand::RecordObservation(available.clone())))
        .collect();
    send_all::<Worker>(mediator, observe).await;

    let definition = definition_id("bench");
    let version = SemVer::parse("1.0.0").unwrap();
    let create = LabletDefinitionCommand::Create {
        name: Name::parse("bench").unwrap(),
        version: version.clone(),
        spec: spec(),
    };
    let synced = LabletDefinitionCommand::RecordSync {
        version,
        outcome: SyncOutcome::Fetched {
            sha256: SHA.into(),
            node_count: 4,
        },
    };
    send_all::<LabletDefinition>(mediator, vec![(definition, create)]).await;
    send_all::<LabletDefinition>(mediator, vec![(definition, synced)]).await;

    let start = chrono::Utc::now() + chrono::Duration::minutes(10);
    let requests = (0..reservations)
        .map(|n| {
            let reservation = format!("bench-{n:06}");
            let request = InstanceRequest {
                definition_id: definition,
                definition_version: Name::parse("1.0.0").unwrap(),
                owner_id: Name::parse(format!("student-{n}")).unwrap(),
                reservation_id: Name::parse(reservation.clone()).unwrap(),
                timeslot: Timeslot::new(start, start + chrono::Duration::minutes(45)).unwrap(),
            };
            (
                instance_id_for_reservation(&reservation),
                LabletInstanceCommand::Request(request),
            )
        })
        .collect();
    send_all::<LabletInstance>(mediator, requests).await;
    ids
}

/// Waits until every read model has applied the log's head.
async fn caught_up(mediator: &Mediator, head: u64) {
    loop {
        let query = ListDocuments {
            collection: LABLET_INSTANCES,
            query: ListQuery {
                filters: Vec::new(),
                limit: 1,
                after_id: None,
                include_history: false,
            },
            min_position: Some(head),
        };
        if mediator.send(query, &RequestContext::system()).await.is_ok() {
            return;
        }
    }
}

/// Checks every worker stream: over-allocated workers, ports held twice, and allocations that
/// do not belong to an instance scheduled on that worker.
async fn check(repository: &AggregateRepository, workers: &[Uuid]) -> (usize, usize, usize) {
    let (mut over, mut twice, mut stray) = (0, 0, 0);
    let mut instances: HashMap<Uuid, Option<Uuid>> = HashMap::new();
    for worker_id in workers {
        let worker = repository.load::<Worker>(*worker_id).await.expect("a worker").state;
        let (declared, held) = (worker.declared_capacity, worker.allocated_capacity);
        if held.cpu_cores > declared.cpu_cores
            || held.memory_gb > declared.memory_gb
            || held.storage_gb > declared.storage_gb
            || held.max_nodes > declared.max_nodes
        {
            over += 1;
        }
        let mut ports = BTreeSet::new();
        for (instance_id, allocation) in &worker.allocations.by_instance {
            twice += allocation.ports.values().filter(|p| !ports.insert(**p)).count();
            if !instances.contains_key(instance_id) {
                let instance = repository
                    .load::<LabletInstance>(*instance_id)
                    .await
                    .expect("an instance");
                instances.insert(*instance_id, instance.state.worker_id);
            }
            if instances[instance_id] != Some(*worker_id) {
                stray += 1;
            }
        }
    }
    (over, twice, stray)
}

/// Instances (of the seeded reservations) scheduled on a worker that holds no allocation for
/// them.
async fn unallocated(repository: &AggregateRepository, reservations: usize) -> usize {
    let mut missing = 0;
    for n in 0..reservations {
        let id = instance_id_for_reservation(&format!("bench-{n:06}"));
        let instance = repository.load::<LabletInstance>(id).await.expect("an instance").state;
        if let Some(worker_id) = instance.worker_id {
            let worker = repository.load::<Worker>(worker_id).await.expect("a worker").state;
            if !worker.allocations.by_instance.contains_key(&id) {
                missing += 1;
            }
        }
    }
    missing
}

/// One run on `settings` (migrated): seeds, times `schedulers` passes at once, checks.
pub async fn run(mut settings: Settings, workers: usize, reservations: usize, schedulers: usize) -> DurableRun {
    settings.fleet.enabled = false;
    // The application's own scheduler is left asleep: the passes timed here are the bench's.
    settings.scheduler.every = Duration::from_secs(24 * 3600);
    settings.query_max_wait = Duration::from_secs(30);
    let app = build(&settings).await.expect("the application starts");
    let mediator = app.state.mediator.clone();
    let worker_ids = seed(&mediator, workers, reservations).await;
    let head = app.stores.events.head_position().await.expect("the head");
    caught_up(&mediator, head).await;
    let repository = Arc::new(AggregateRepository::new(
        app.stores.events.clone(),
        Arc::new(lablet_application::ports::SystemClock),
    ));
    let scheduler_settings = SchedulerSettings {
        every: Duration::from_secs(3600),
        ..SchedulerSettings::default()
    };
    let passes = (0..schedulers).map(|_| {
        let scheduler = Scheduler::new(
            mediator.clone(),
            repository.clone(),
            Arc::new(lablet_application::ports::SystemClock),
            scheduler_settings,
        );
        async move { scheduler.pass(&RequestContext::system()).await }
    });
    let started = Instant::now();
    let reports = join_all(passes).await;
    let seconds = started.elapsed().as_secs_f64();
    let placed = reports.into_iter().map(|r| r.expect("a scheduler pass").placed).sum();
    let (over_allocated, ports_twice, stray_allocations) = check(&repository, &worker_ids).await;
    let unallocated = unallocated(&repository, reservations).await;
    app.shutdown().await;
    DurableRun {
        placed,
        seconds,
        over_allocated,
        ports_twice,
        stray_allocations,
        unallocated,
    }
}
