//! `lablet serve --demo`: a living fleet for newcomers, with no CML server needed.
//!
//! Three simulated CML servers start in this process, each with a few labs, and are registered
//! as workers in region `demo` (workers of an earlier demo in the same data directory are
//! terminated first: their simulators are gone). The fleet jobs run every few seconds instead of
//! every few minutes, and every 20 s a lab on some simulator starts or stops, so lab records
//! change state while you watch. It also books three lablets on that fleet and answers their
//! grading (`demo_lablets`), so instances go from `pending` to `terminated` in a few minutes.

use crate::app::App;
use lablet_application::ports::read_models::{Filter, ListQuery};
use lablet_application::ports::CmlCredentials;
use lablet_application::ports::{IdSource, UuidV7Ids};
use lablet_application::read_model_queries::{ListDocuments, MAX_PAGE, WORKERS};
use lablet_application::workers::RegisterWorker;
use lablet_application::{Execute, RequestContext};
use lablet_cml_simulator::{LabChange, LabSeed, RunningSimulator, SimulatorConfig};
use lablet_domain::values::{FreeText, Name};
use lablet_domain::worker::{Capacity, Endpoint, Registration, Worker, WorkerCommand, WorkerStatus};
use lablet_infrastructure::Settings;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The region of demo workers.
const REGION: &str = "demo";
const SIMULATORS: usize = 3;
/// How often a demo lab changes state.
const CHURN_EVERY: Duration = Duration::from_secs(20);

/// The demo's simulators and the task that keeps their labs moving.
pub struct Demo {
    simulators: std::sync::Arc<Vec<RunningSimulator>>,
    churn: JoinHandle<()>,
    lablets: JoinHandle<()>,
}

/// Shortens the fleet jobs' intervals unless they were configured.
pub fn adjust(settings: &mut Settings) {
    if std::env::var_os("LABLET_MONITORING_INTERVAL").is_none() {
        settings.fleet.monitoring_interval = Duration::from_secs(10);
    }
    if std::env::var_os("LABLET_LABS_REFRESH_INTERVAL").is_none() {
        settings.fleet.labs_refresh_interval = Duration::from_secs(15);
    }
    // The demo's lablets last minutes: it places and moves them every second or two.
    settings.definition_sync_interval = Duration::from_secs(1);
    settings.scheduler.every = Duration::from_secs(2);
    settings.lifecycle.every = Duration::from_secs(1);
}

fn labs_of(simulator: usize) -> Vec<LabSeed> {
    let topics = [
        ("CCNA", 4, 3),
        ("CCNP ENCOR", 8, 10),
        ("DevNet", 2, 1),
        ("Security", 6, 7),
    ];
    topics
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != simulator % topics.len())
        .map(|(i, (topic, nodes, links))| LabSeed {
            title: format!("{topic} practice {}", simulator + 1),
            description: format!("{topic} lab on demo worker {}", simulator + 1),
            state: Some(if i % 2 == 0 { "STARTED" } else { "STOPPED" }.into()),
            owner_username: Some(format!("student{}", i + 1)),
            node_count: *nodes,
            link_count: *links,
            groups: vec!["students".into()],
            ..LabSeed::default()
        })
        .collect()
}

/// Waits until every read model has applied `position`. After a crash, the dead process's
/// leases keep the projections until they expire: wait that long, not a query's few seconds.
async fn read_models_at(app: &App, position: u64) -> Result<(), String> {
    let patience = app.state.leadership.settings().ttl + Duration::from_secs(30);
    for projection in app.state.projections.iter() {
        app.state
            .progress
            .wait_for(projection, position, patience)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn retire_earlier_demo_workers(app: &App, context: &RequestContext) -> Result<(), String> {
    let head = app.state.events.head_position().await.map_err(|e| e.to_string())?;
    read_models_at(app, head).await?;
    let query = ListDocuments {
        collection: WORKERS,
        query: ListQuery {
            filters: vec![Filter::Equals {
                field: "region",
                value: REGION.into(),
            }],
            limit: MAX_PAGE,
            after_id: None,
            include_history: false,
        },
        min_position: Some(head),
    };
    let page = app
        .state
        .mediator
        .send(query, context)
        .await
        .map_err(|e| e.to_string())?;
    for item in page.items {
        #[derive(serde::Deserialize)]
        struct Earlier {
            id: uuid::Uuid,
            status: WorkerStatus,
        }
        let earlier: Earlier = serde_json::from_str(item.get()).map_err(|e| e.to_string())?;
        if earlier.status != WorkerStatus::Terminated {
            let retire = WorkerCommand::ChangeStatus {
                to: WorkerStatus::Terminated,
                reason: FreeText::parse("an earlier demo's simulator is gone")?,
            };
            let retire = Execute::<Worker>::on(earlier.id, retire);
            let retired = app
                .state
                .mediator
                .send(retire, context)
                .await
                .map_err(|e| e.to_string())?;
            read_models_at(app, retired.position).await?;
            app.state
                .labs_refresh
                .remove_labs_of_terminated(earlier.id, context)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Starts the simulators, registers them as workers of `app`, and books the demo's lablets
/// (their definition's topology a file in `data_dir`).
pub async fn start(app: &App, data_dir: &std::path::Path) -> Result<Demo, String> {
    let context = RequestContext {
        actor: "demo".into(),
        ..RequestContext::system()
    };
    retire_earlier_demo_workers(app, &context).await?;
    let mut simulators = Vec::new();
    for n in 0..SIMULATORS {
        let password = format!("demo-{}", UuidV7Ids.new_id().simple());
        let config = SimulatorConfig {
            password: password.clone(),
            product_license: if n == 2 { "CML_Personal" } else { "CML_Enterprise" }.into(),
            ..SimulatorConfig::default()
        };
        let simulator = RunningSimulator::start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .map_err(|e| format!("the demo's CML simulator cannot listen: {e}"))?;
        for lab in labs_of(n) {
            simulator.add_lab(lab);
        }
        let registration = Registration {
            name: Name::parse(format!("demo-worker-{}", n + 1))?,
            region: Name::parse(REGION)?,
            endpoint: Some(Endpoint::parse(&simulator.url())?),
            template_name: Some(Name::parse("demo")?),
            instance_id: None,
            declared_capacity: Capacity {
                cpu_cores: 32,
                memory_gb: 128,
                storage_gb: 500,
                max_nodes: if n == 2 { 20 } else { 100 },
            },
            insecure_tls: false,
        };
        let register = RegisterWorker {
            registration,
            credentials: Some(CmlCredentials {
                username: "admin".into(),
                password,
            }),
        };
        app.state
            .mediator
            .send(register, &context)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "demo: simulated CML server demo-worker-{} at {}",
            n + 1,
            simulator.url()
        );
        simulators.push(simulator);
    }
    let simulators = std::sync::Arc::new(simulators);
    let churn = tokio::spawn(churn(simulators.clone()));
    let lablets = tokio::spawn(super::demo_lablets::run(
        app.state.mediator.clone(),
        data_dir.to_owned(),
        context,
    ));
    Ok(Demo {
        simulators,
        churn,
        lablets,
    })
}

/// Every [`CHURN_EVERY`], starts a stopped lab or stops a started one, in turn.
async fn churn(simulators: std::sync::Arc<Vec<RunningSimulator>>) {
    let mut turn = 0usize;
    loop {
        tokio::time::sleep(CHURN_EVERY).await;
        let simulator = &simulators[turn % simulators.len()];
        let labs = simulator.labs();
        if let Some((id, state)) = labs.get((turn / simulators.len()) % labs.len().max(1)) {
            let next = if state == "STARTED" { "STOPPED" } else { "STARTED" };
            simulator.change_lab(
                id,
                LabChange {
                    state: Some(next.into()),
                    ..LabChange::default()
                },
            );
        }
        turn += 1;
    }
}

impl Demo {
    pub async fn stop(self) {
        self.churn.abort();
        self.lablets.abort();
        if let Ok(simulators) = std::sync::Arc::try_unwrap(self.simulators) {
            for simulator in simulators {
                simulator.stop().await;
            }
        }
    }
}
