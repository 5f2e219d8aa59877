//! Start-up: one function builds the whole application (stores, mediator, projections,
//! router) for `lablet serve`, the tests and the benchmark alike.

use crate::auth::Authenticator;
use crate::routes::{endpoints, router, AppState};
use axum::Router;
use lablet_application::audit::{AuditQueries, ReadLogPage, ReadStreamPage, StreamStateAt};
use lablet_application::definitions::{DefinitionSync, DEFINITION_SYNC};
use lablet_application::executors::{BuiltinExecutors, LabSteps};
use lablet_application::fleet::monitoring::Monitoring;
use lablet_application::fleet::refresh::LabsRefresh;
use lablet_application::fleet::FleetScheduler;
use lablet_application::inbox::{GetInboxMessage, InboxHandlers, InboxProcessor, ReceiveCloudEvent, INBOX_PROCESSOR};
use lablet_application::instances::InstanceHandlers;
use lablet_application::leadership::Leadership;
use lablet_application::lifecycle::{LifecycleManager, LifecycleSettings, LIFECYCLE};
use lablet_application::metrics::{Metrics, MetricsBehaviour};
use lablet_application::outbox::{CloudEventSink, GetOutbox, OutboxHandlers, OutboxRelay, RedriveParked};
use lablet_application::ports::CredentialVault;
use lablet_application::ports::{Clock, LeaseFence, SystemClock};
use lablet_application::progress::ProjectionProgress;
use lablet_application::read_model_queries::{GetDocument, GetDocuments, ListDocuments, ReadModelQueries};
use lablet_application::repository::AggregateRepository;
use lablet_application::scheduling::{Scheduler, SCHEDULER};
use lablet_application::work_orders::{ClaimHandler, ClaimWorkOrder, WorkOrderTimers, WorkQueue, WORK_ORDER_TIMERS};
use lablet_application::workers::{
    ChangeWorkerCredentials, GetIdleStatus, RecordActivityAndDetectIdle, RegisterWorker, WorkerHandlers,
};
use lablet_application::{AppError, Execute, Mediator, RequestContext};
use lablet_domain::lab_record::LabRecord;
use lablet_domain::lablet_definition::LabletDefinition;
use lablet_domain::lablet_instance::LabletInstance;
use lablet_domain::work_order::WorkOrder;
use lablet_domain::worker::Worker;
use lablet_domain::worker_template::{template_id, WorkerTemplate, WorkerTemplateCommand};
use lablet_domain::DomainError;
use lablet_infrastructure::artifacts::ObjectStoreArtifacts;
use lablet_infrastructure::cloudevents::{HttpSink, NatsSink};
use lablet_infrastructure::cml::HttpCmlConnector;
use lablet_infrastructure::credentials::SealingVault;
use lablet_infrastructure::secrets::SecretBox;
use lablet_infrastructure::stores::{open_stores, Stores};
use lablet_infrastructure::template_seeds::read_template_seeds;
use lablet_infrastructure::Settings;
use lablet_projections::standby::follow_checkpoints;
use lablet_projections::{standard_projectors, ProjectionRunner};
use std::future::IntoFuture;
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// A singleton role's task, as its lease loop starts it.
type RoleFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] lablet_infrastructure::ConfigError),
    #[error(transparent)]
    Migration(#[from] lablet_migrations::MigrationError),
    #[error("LABLET_AUTH_*: cannot prepare token verification: {0}")]
    Auth(std::io::Error),
    #[error("the OpenAPI document cannot be made: {0}")]
    OpenApi(String),
    #[error("LABLET_SECRET_KEY: {0}")]
    Secrets(lablet_infrastructure::secrets::SecretsError),
    #[error("LABLET_CML_CA_BUNDLE: {0}")]
    CmlClient(String),
    #[error("LABLET_WORKER_TEMPLATES: template {name} could not be seeded: {reason}")]
    Seed { name: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// A running application: its router, and the background work to stop with it.
pub struct App {
    pub state: AppState,
    pub stores: Stores,
    limits: lablet_infrastructure::config::HttpLimits,
    metrics_public: bool,
    shutdown: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

impl App {
    /// Every route, with the shared limits, every request in a span of its own and counted
    /// (shed and timed-out ones too: tracing and metrics are the outermost layers).
    pub fn router(&self) -> Router {
        let limited = crate::limits::apply(router(self.state.clone(), self.metrics_public), &self.limits);
        let traced = limited.layer(axum::middleware::from_fn(crate::telemetry::http::request_span));
        let counted = traced.layer(axum::middleware::from_fn_with_state(
            self.state.clone(),
            crate::routes::metrics::record_http,
        ));
        counted.layer(axum::middleware::from_fn_with_state(
            self.state.draining.clone(),
            close_when_draining,
        ))
    }

    /// Stops the projection runners and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.background {
            let _ = task.await;
        }
    }
}

/// The vault of CML credentials: sealed under the configured (or data-directory) key, kept
/// beside the read models.
/// Defines every template of the `LABLET_WORKER_TEMPLATES` file that does not exist yet; an
/// existing one is left as it is (replicas starting together define each once).
async fn seed_worker_templates(settings: &Settings, mediator: &Mediator) -> Result<(), StartupError> {
    let Some(path) = &settings.worker_templates else {
        return Ok(());
    };
    for (name, spec) in read_template_seeds(path)? {
        let id = template_id(name.as_str());
        let label = name.to_string();
        let command = Execute::<WorkerTemplate>::on(id, WorkerTemplateCommand::Define { name, spec });
        match mediator.send(command, &RequestContext::system()).await {
            Ok(_) | Err(AppError::Rule(DomainError::AlreadyExists { .. })) => {}
            Err(err) => {
                return Err(StartupError::Seed {
                    name: label,
                    reason: err.to_string(),
                })
            }
        }
    }
    Ok(())
}

pub fn credential_vault(settings: &Settings, stores: &Stores) -> Result<Arc<dyn CredentialVault>, StartupError> {
    let secret_box =
        SecretBox::open_or_create(settings.secret_key.as_ref(), &settings.data_dir).map_err(StartupError::Secrets)?;
    Ok(Arc::new(SealingVault::new(
        Arc::new(secret_box),
        stores.secrets.clone(),
    )))
}

/// The mediator with every handler registered.
pub fn build_mediator(
    settings: &Settings,
    stores: &Stores,
    progress: &ProjectionProgress,
    clock: Arc<dyn Clock>,
) -> Result<Mediator, StartupError> {
    let repository = Arc::new(AggregateRepository::new(stores.events.clone(), clock.clone()));
    let vault = credential_vault(settings, stores)?;
    // A queue that does not follow the log: nothing is claimable through this mediator.
    let queue = Arc::new(WorkQueue::new(clock));
    let shared = Shared {
        repository,
        vault,
        metrics: Arc::default(),
        work_queue: queue,
    };
    Ok(register_handlers(settings, stores, progress, shared, Vec::new()))
}

/// What the handlers share with the rest of the application.
struct Shared {
    /// The repository, and with it the aggregate cache.
    repository: Arc<AggregateRepository>,
    vault: Arc<dyn CredentialVault>,
    metrics: Arc<Metrics>,
    work_queue: Arc<WorkQueue>,
}

/// Registers every handler on a mediator sharing `shared`.
fn register_handlers(
    settings: &Settings,
    stores: &Stores,
    progress: &ProjectionProgress,
    shared: Shared,
    relays: Vec<(String, Arc<Notify>)>,
) -> Mediator {
    let Shared {
        repository,
        vault,
        metrics,
        work_queue: queue,
    } = shared;
    let mut mediator = Mediator::default();
    mediator.add_behaviour(Arc::new(MetricsBehaviour::new(metrics)));
    mediator.add_standard_behaviours(settings.command_max_attempts);

    // Domain commands go straight to the repository, unless application logic sits between.
    mediator.register::<Execute<LabRecord>>(repository.clone());
    mediator.register::<Execute<WorkOrder>>(repository.clone());
    mediator.register::<Execute<Worker>>(repository.clone());
    mediator.register::<Execute<LabletDefinition>>(repository.clone());
    mediator.register::<Execute<WorkerTemplate>>(repository.clone());
    mediator.register::<Execute<LabletInstance>>(Arc::new(InstanceHandlers::new(repository.clone())));
    mediator.register::<ClaimWorkOrder>(Arc::new(ClaimHandler::new(queue, repository.clone())));

    let workers = Arc::new(WorkerHandlers::new(
        repository.clone(),
        vault,
        settings.fleet.idle_policy,
    ));
    mediator.register::<RegisterWorker>(workers.clone());
    mediator.register::<ChangeWorkerCredentials>(workers.clone());
    mediator.register::<RecordActivityAndDetectIdle>(workers.clone());
    mediator.register::<GetIdleStatus>(workers);

    let queries = Arc::new(ReadModelQueries::new(
        stores.read_models.clone(),
        stores.events.clone(),
        progress.clone(),
        settings.query_max_wait,
    ));
    mediator.register::<GetDocument>(queries.clone());
    mediator.register::<GetDocuments>(queries.clone());
    mediator.register::<ListDocuments>(queries);

    let audit = Arc::new(AuditQueries::new(stores.events.clone()));
    mediator.register::<ReadStreamPage>(audit.clone());
    mediator.register::<ReadLogPage>(audit.clone());
    mediator.register::<StreamStateAt>(audit);

    let inbox = Arc::new(InboxHandlers::new(repository));
    mediator.register::<ReceiveCloudEvent>(inbox.clone());
    mediator.register::<GetInboxMessage>(inbox);

    let outbox = Arc::new(OutboxHandlers::new(
        stores.events.clone(),
        stores.outbox.clone(),
        relays,
    ));
    mediator.register::<GetOutbox>(outbox.clone());
    mediator.register::<RedriveParked>(outbox);
    mediator
}

/// The sinks configured in `settings`.
fn configured_sinks(settings: &Settings) -> Vec<Arc<dyn CloudEventSink>> {
    let outbox = &settings.outbox;
    let mut sinks: Vec<Arc<dyn CloudEventSink>> = Vec::new();
    if let Some((url, mode)) = &outbox.http {
        sinks.push(Arc::new(HttpSink::new(url.clone(), *mode, outbox.source.clone())));
    }
    if let Some(nats) = &outbox.nats {
        sinks.push(Arc::new(NatsSink::new(
            nats.url.clone(),
            nats.stream.clone(),
            nats.subject_prefix.clone(),
            outbox.source.clone(),
        )));
    }
    sinks
}

/// Migrates and opens the stores, wires the mediator and starts the projections and the inbox
/// processor.
pub async fn build(settings: &Settings) -> Result<App, StartupError> {
    lablet_migrations::migrate_all(settings).await?;
    let stores = open_stores(settings).await?;
    build_on(settings, stores).await
}

/// The application on `stores`, opened (and migrated) already.
pub async fn build_on(settings: &Settings, stores: Stores) -> Result<App, StartupError> {
    build_on_clock(settings, stores, Arc::new(SystemClock)).await
}

/// The application on `stores` whose commands, jobs and timers read `clock` (a manual clock in
/// tests of time).
pub async fn build_on_clock(settings: &Settings, stores: Stores, clock: Arc<dyn Clock>) -> Result<App, StartupError> {
    let progress = ProjectionProgress::default();
    let metrics = Arc::new(Metrics::default());
    let repository = Arc::new(
        AggregateRepository::new(stores.events.clone(), clock.clone())
            .with_metrics(metrics.clone())
            .with_leases(stores.leases.clone()),
    );
    let relays: Vec<OutboxRelay> = configured_sinks(settings)
        .into_iter()
        .map(|sink| {
            OutboxRelay::new(
                stores.events.clone(),
                stores.outbox.clone(),
                sink,
                settings.outbox.relay.clone(),
            )
        })
        .collect();
    let relay_signals = relays
        .iter()
        .map(|relay| (relay.sink_name().to_owned(), relay.redrive_signal()))
        .collect();
    let vault = credential_vault(settings, &stores)?;
    let work_queue = Arc::new(WorkQueue::new(clock.clone()));
    let shared = Shared {
        repository: repository.clone(),
        vault: vault.clone(),
        metrics: metrics.clone(),
        work_queue: work_queue.clone(),
    };
    let mediator = Arc::new(register_handlers(settings, &stores, &progress, shared, relay_signals));
    seed_worker_templates(settings, &mediator).await?;
    let connector = Arc::new(HttpCmlConnector::new(settings.cml.clone(), vault).map_err(StartupError::CmlClient)?);
    let lab_steps = Arc::new(LabSteps::new(
        repository.clone(),
        mediator.clone(),
        connector.clone(),
        Arc::new(ObjectStoreArtifacts),
    ));
    let labs_refresh = Arc::new(LabsRefresh::new(
        mediator.clone(),
        connector.clone(),
        stores.events.clone(),
        metrics.clone(),
        settings.fleet.clone(),
    ));
    let monitoring = Arc::new(Monitoring::new(mediator.clone(), connector, metrics.clone()));
    let (shutdown, stop) = watch::channel(false);
    let leadership = Arc::new(Leadership::new(
        stores.leases.clone(),
        format!("{}-{}", std::process::id(), repository.ids().new_id().simple()),
        settings.leases,
        clock.clone(),
        metrics.clone(),
    ));
    let mut background = vec![
        tokio::spawn(leadership.clone().heartbeat(stop.clone())),
        // Every replica keeps its own claim index from the log: claims are served by all.
        tokio::spawn(work_queue.clone().follow(stores.events.clone(), stop.clone())),
    ];
    // Every replica runs every role under its lease: the holder works, the others wait.
    let mut singleton =
        |role: String, start: Box<dyn Fn(watch::Receiver<bool>, LeaseFence) -> RoleFuture + Send + Sync>| {
            background.push(tokio::spawn(leadership.clone().run_role(role, stop.clone(), start)));
        };
    let mut names = Vec::new();
    for projector in standard_projectors() {
        let name = projector.collection().name;
        names.push(name);
        let (events, read_models, progress) = (stores.events.clone(), stores.read_models.clone(), progress.clone());
        singleton(
            format!("projection:{name}"),
            Box::new(move |stop, _| {
                let runner =
                    ProjectionRunner::new(events.clone(), read_models.clone(), projector.clone(), progress.clone());
                Box::pin(runner.run(stop))
            }),
        );
    }
    let (events, read_models, inbox_mediator) = (stores.events.clone(), stores.read_models.clone(), mediator.clone());
    let inbox_repository = repository.clone();
    singleton(
        INBOX_PROCESSOR.to_owned(),
        Box::new(move |stop, _| {
            let inbox = InboxProcessor::new(
                events.clone(),
                read_models.clone(),
                inbox_mediator.clone(),
                inbox_repository.clone(),
            );
            Box::pin(inbox.run(stop))
        }),
    );
    for relay in relays {
        let relay = Arc::new(relay);
        singleton(
            format!("outbox:{}", relay.sink_name()),
            Box::new(move |stop, fence| Box::pin(relay.clone().run(stop, fence))),
        );
    }
    let sync = Arc::new(DefinitionSync::new(
        mediator.clone(),
        Arc::new(ObjectStoreArtifacts),
        settings.definition_sync_interval,
        clock.clone(),
    ));
    singleton(
        DEFINITION_SYNC.to_owned(),
        Box::new(move |stop, fence| Box::pin(sync.clone().run(stop, fence))),
    );
    let scheduler = Arc::new(Scheduler::new(
        mediator.clone(),
        repository.clone(),
        clock.clone(),
        settings.scheduler,
    ));
    singleton(
        SCHEDULER.to_owned(),
        Box::new(move |stop, fence| Box::pin(scheduler.clone().run(stop, fence))),
    );
    let timers = Arc::new(WorkOrderTimers::new(
        mediator.clone(),
        clock.clone(),
        settings.work_order_tick,
    ));
    singleton(
        WORK_ORDER_TIMERS.to_owned(),
        Box::new(move |stop, fence| Box::pin(timers.clone().run(stop, fence))),
    );
    if settings.lifecycle.enabled {
        let lifecycle = Arc::new(LifecycleManager::new(
            mediator.clone(),
            repository.clone(),
            stores.events.clone(),
            clock.clone(),
            LifecycleSettings {
                lead_time: settings.scheduler.lead_time,
                ..settings.lifecycle
            },
        ));
        singleton(
            LIFECYCLE.to_owned(),
            Box::new(move |stop, fence| Box::pin(lifecycle.clone().run(stop, fence))),
        );
    }
    let fleet = FleetScheduler {
        refresh: labs_refresh.clone(),
        monitoring,
        settings: settings.fleet.clone(),
        clock: clock.clone(),
        fence: None,
    };
    singleton(
        "fleet".to_owned(),
        Box::new(move |stop, fence| Box::pin(fleet.clone().run(stop, Some(fence)))),
    );
    if settings.executors.concurrency > 0 {
        // Built-in executors claim on every replica, as remote ones do.
        let executors = Arc::new(BuiltinExecutors::new(
            mediator.clone(),
            lab_steps,
            settings.executors,
            format!("lablet-{}", leadership.replica()),
        ));
        background.push(tokio::spawn(executors.run(stop.clone())));
    }
    background.push(tokio::spawn(follow_checkpoints(
        stores.events.clone(),
        stores.read_models.clone(),
        progress.clone(),
        names.clone(),
        stop.clone(),
    )));
    let authenticator = Authenticator::new(&settings.auth, stores.api_keys.clone()).map_err(StartupError::Auth)?;
    let state = AppState {
        mediator,
        events: stores.events.clone(),
        read_models: stores.read_models.clone(),
        api_keys: stores.api_keys.clone(),
        progress,
        projections: Arc::new(names),
        metrics,
        authenticator: Arc::new(authenticator),
        labs_refresh,
        openapi: Arc::new(
            crate::openapi::document(&endpoints(settings.auth.metrics_public)).map_err(StartupError::OpenApi)?,
        ),
        draining: Arc::default(),
        leadership,
        work_queue,
    };
    Ok(App {
        state,
        stores,
        limits: settings.http_limits.clone(),
        metrics_public: settings.auth.metrics_public,
        shutdown,
        background,
    })
}

/// Serves `app` on `listener` until `stop` resolves, then stops the background work.
pub async fn serve_until(
    app: App,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_gracefully(app, listener, stop, None).await
}

/// `Connection: close` on every answer once shutdown has begun, so that no client sends a
/// request on a connection the server is about to close.
async fn close_when_draining(
    axum::extract::State(draining): axum::extract::State<Arc<std::sync::atomic::AtomicBool>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    if draining.load(std::sync::atomic::Ordering::Relaxed) {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Serves until `stop` resolves; then, when a `grace` is given, drains for the configured time
/// (readiness 503, `Connection: close` on every answer) before it stops accepting connections
/// and lets requests in flight finish, for at most `grace` (then they are dropped); then the
/// background tasks commit what they hold and end, again within `grace`.
pub async fn serve_gracefully(
    app: App,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Option<std::time::Duration>,
) -> std::io::Result<()> {
    let router = app.router();
    let (stopping, mut stopped) = watch::channel(false);
    let draining = app.state.draining.clone();
    let drain = app.limits.shutdown_drain;
    let stop = async move {
        stop.await;
        // Say we are going (readiness fails, connections close after their answer) while still
        // serving, so clients and load balancers move on before the listener closes.
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        if grace.is_some() {
            tokio::time::sleep(drain).await;
        }
        let _ = stopping.send(true);
    };
    let serving = axum::serve(listener, router).with_graceful_shutdown(stop).into_future();
    let served = match grace {
        None => serving.await,
        Some(grace) => {
            let deadline = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                served = serving => served,
                () = deadline => {
                    tracing::warn!(grace_ms = grace.as_millis() as u64, "requests still in flight after the grace period were dropped");
                    Ok(())
                }
            }
        }
    };
    match grace {
        None => app.shutdown().await,
        Some(grace) => {
            if tokio::time::timeout(grace, app.shutdown()).await.is_err() {
                tracing::warn!("background tasks did not end within the grace period");
            }
        }
    }
    served
}
