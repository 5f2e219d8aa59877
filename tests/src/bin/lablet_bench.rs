//! `lablet-bench`: Lablet's performance figures and their baseline, in one run.
//!
//! 1. Raw SQLite inserts of command-shaped event rows in batches (the baseline).
//! 2. Commands through the mediator (observations that change a lab's state, over 10,000 labs)
//!    with 1 and with 64 concurrent writers: commands/s, p50/p99 latency.
//! 3. Projection catch-up of the `lab_records` read model over the whole log (≥ 1,000,000
//!    events), events/s and memory (into SQLite, or PostgreSQL with `--postgres`).
//! 4. HTTP p99 of `GET /api/v1/workers/{id}/labs` with 1,000 workers × 100 labs loaded.
//!
//! Run with `cargo run --release -p lablet-tests --bin lablet-bench`; add
//! `-- --postgres postgres://postgres@127.0.0.1:5432/test` to put the event log (and the
//! baseline) on PostgreSQL.

use clap::Parser;
use lablet_api::app::{build, build_mediator, serve_until};
use lablet_application::ports::ReadModelStore;
use lablet_application::ports::SystemClock;
use lablet_application::progress::ProjectionProgress;
use lablet_application::Execute;
use lablet_application::{Mediator, RequestContext};
use lablet_domain::lab_record::{lab_record_id, LabDetails, LabObservation, LabRecord, LabRecordCommand, LabState};
use lablet_domain::values::LabId;
use lablet_infrastructure::config::StoreLocation;
use lablet_infrastructure::postgres::PostgresReadModelStore;
use lablet_infrastructure::sqlite::SqliteReadModelStore;
use lablet_infrastructure::stores::open_stores;
use lablet_infrastructure::Settings;
use lablet_migrations::postgres::{READ_MODELS as POSTGRES_READ_MODELS, READ_MODELS_TABLE};
use lablet_migrations::sqlite::{migrate_file, READ_MODELS};
use lablet_projections::projectors::LabRecordsProjector;
use lablet_projections::ProjectionRunner;
use lablet_tests::bench::baseline::raw_inserts_per_second;
use lablet_tests::bench::postgres_baseline::raw_inserts_per_second as raw_postgres_inserts_per_second;
use lablet_tests::bench::stats::{resident_mib, Latencies};
use lablet_tests::postgres::TestDatabase;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Parser)]
#[command(about = "Lablet benchmark: commands, projections and queries against their baseline")]
struct Args {
    /// Labs the command benchmark spreads its observations over.
    #[arg(long, default_value_t = 10_000)]
    labs: usize,
    /// Commands sent by the single writer.
    #[arg(long, default_value_t = 5_000)]
    single_writer_commands: usize,
    /// Commands sent by the 64 writers together.
    #[arg(long, default_value_t = 300_000)]
    concurrent_commands: usize,
    /// Events the log holds before projection catch-up is measured.
    #[arg(long, default_value_t = 1_000_000)]
    projection_events: usize,
    /// Workers and labs per worker for the query benchmark.
    #[arg(long, default_value_t = 1_000)]
    workers: usize,
    #[arg(long, default_value_t = 100)]
    labs_per_worker: usize,
    /// Queries sent in the query benchmark.
    #[arg(long, default_value_t = 20_000)]
    queries: usize,
    /// A PostgreSQL server (`postgres://user@host/db`): the event log of every phase, and the
    /// read model of the projection catch-up, go to scratch databases there (dropped at the
    /// end), and the baseline is raw batched INSERTs into the same table.
    #[arg(long)]
    postgres: Option<String>,
}

fn observation(worker_id: Uuid, lab: usize, state: LabState) -> Execute<LabRecord> {
    let lab_id = LabId::parse(format!("lab-{lab:06}")).expect("a short lab id");
    let id = lab_record_id(worker_id, &lab_id);
    let seen = LabObservation {
        worker_id,
        lab_id,
        details: LabDetails {
            title: format!("Lab {lab}"),
            description: "OSPF area 0 with two routers".into(),
            owner_username: "instructor".into(),
            owner_fullname: "Course Instructor".into(),
            node_count: 4,
            link_count: 3,
            groups: vec!["students".into()],
            ..LabDetails::default()
        },
        state,
        cml_created_at: None,
        cml_modified_at: None,
    };
    Execute::on(id, LabRecordCommand::Observe(seen))
}

/// Sends `total` observations with `writers` concurrent writers; observation `n` goes to lab
/// `n % labs` and flips its state each time round, so every command changes something.
async fn drive(
    mediator: Arc<Mediator>,
    worker_of: Arc<dyn Fn(usize) -> (Uuid, usize) + Send + Sync>,
    labs: usize,
    writers: usize,
    total: usize,
    offset: usize,
) -> (Duration, Latencies) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (mediator, next, worker_of) = (mediator.clone(), next.clone(), worker_of.clone());
        tasks.push(tokio::spawn(async move {
            let context = RequestContext::system();
            let mut latencies = Latencies::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return latencies;
                }
                let round = (n + offset) / labs;
                let state = if round.is_multiple_of(2) {
                    LabState::Stopped
                } else {
                    LabState::Started
                };
                let (worker, lab) = worker_of((n + offset) % labs);
                let sent = Instant::now();
                let outcome = mediator
                    .send(observation(worker, lab, state), &context)
                    .await
                    .expect("command succeeds");
                latencies.record(sent.elapsed());
                assert!(outcome.changed, "every benchmark command changes a lab");
            }
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.extend(task.await.expect("writer"));
    }
    (started.elapsed(), all)
}

/// Settings over `dir`, with the event log in a new database on `postgres` when given.
async fn settings_in(dir: &std::path::Path, postgres: Option<&str>, databases: &mut Vec<TestDatabase>) -> Settings {
    let mut settings = Settings::defaults_in(dir);
    if let Some(server) = postgres {
        let database = TestDatabase::create_on(server).await;
        settings.event_store = StoreLocation::Postgres(database.url.clone());
        databases.push(database);
    }
    lablet_migrations::migrate_all(&settings).await.expect("migrations");
    settings
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("benchmark directory");
    println!(
        "lablet-bench — {} cores, data in {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display()
    );

    // 1. Baseline.
    let baseline_rows = args.concurrent_commands.min(200_000);
    let mut baselines = Vec::new();
    let mut databases = Vec::new();
    match &args.postgres {
        None => println!("\n== baseline: raw SQLite inserts of the same rows (WAL, synchronous=FULL) =="),
        Some(_) => println!("\n== baseline: raw batched INSERTs of the same rows into PostgreSQL =="),
    }
    for batch in [1usize, 64, 1024] {
        let rows = if batch == 1 {
            args.single_writer_commands
        } else {
            baseline_rows
        };
        let rate = match &args.postgres {
            Some(server) => {
                let database = TestDatabase::create_on(server).await;
                let rate = raw_postgres_inserts_per_second(&database.target(), rows, args.labs, batch).await;
                database.drop_now().await;
                rate
            }
            None => {
                let path = dir.path().join(format!("baseline-{batch}.db"));
                let rate = raw_inserts_per_second(&path, rows, args.labs, batch);
                // Gone before the next phase, so that writing its pages back does not compete with it.
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                rate
            }
        };
        println!("batch {batch:>5}: {rate:>10.0} rows/s  ({rows} rows)");
        baselines.push((batch, rate));
    }

    // 2. Commands through the mediator.
    println!(
        "\n== commands through the mediator: observations changing a lab's state over {} labs ==",
        args.labs
    );
    let command_dir = dir.path().join("commands");
    let settings = settings_in(&command_dir, args.postgres.as_deref(), &mut databases).await;
    let stores = open_stores(&settings).await.expect("stores");
    let mediator = Arc::new(
        build_mediator(
            &settings,
            &stores,
            &ProjectionProgress::default(),
            Arc::new(SystemClock),
        )
        .expect("mediator"),
    );
    let worker = Uuid::now_v7();
    let one_worker: Arc<dyn Fn(usize) -> (Uuid, usize) + Send + Sync> = Arc::new(move |lab| (worker, lab));
    let (seeded, _) = drive(mediator.clone(), one_worker.clone(), args.labs, 64, args.labs, 0).await;
    println!("seeded {} labs in {:.2} s", args.labs, seeded.as_secs_f64());
    let mut offset = args.labs;
    let mut results = Vec::new();
    for (writers, total) in [(1usize, args.single_writer_commands), (64, args.concurrent_commands)] {
        let memory_before = resident_mib();
        let (elapsed, mut latencies) =
            drive(mediator.clone(), one_worker.clone(), args.labs, writers, total, offset).await;
        offset += total;
        let rate = total as f64 / elapsed.as_secs_f64();
        println!(
            "{writers:>2} writer(s): {rate:>10.0} commands/s  p50 {:.3} ms  p99 {:.3} ms  ({total} commands, RSS {memory_before:.0} → {:.0} MiB)",
            latencies.percentile_ms(50.0),
            latencies.percentile_ms(99.0),
            resident_mib()
        );
        results.push((writers, rate, latencies.percentile_ms(99.0)));
    }

    // Fill the log to the projection size through the same command path.
    let have = offset;
    if have < args.projection_events {
        let (elapsed, _) = drive(
            mediator.clone(),
            one_worker.clone(),
            args.labs,
            64,
            args.projection_events - have,
            offset,
        )
        .await;
        println!(
            "filled the log to {} events in {:.1} s",
            args.projection_events,
            elapsed.as_secs_f64()
        );
    }

    // 3. Projection catch-up into a fresh read model.
    let head = stores.events.head_position().await.expect("head");
    let fresh: Arc<dyn ReadModelStore> = match &args.postgres {
        None => {
            println!("\n== projection catch-up: lab_records from position 0 into SQLite ==");
            let fresh_path = command_dir.join("catch_up.db");
            migrate_file(&fresh_path, READ_MODELS).expect("fresh read models");
            Arc::new(SqliteReadModelStore::open(&fresh_path).expect("fresh store"))
        }
        Some(server) => {
            println!("\n== projection catch-up: lab_records from position 0 into PostgreSQL ==");
            let database = TestDatabase::create_on(server).await;
            let target = database.target();
            lablet_migrations::postgres::migrate(&target, READ_MODELS_TABLE, POSTGRES_READ_MODELS)
                .await
                .expect("fresh read models");
            databases.push(database);
            Arc::new(PostgresReadModelStore::open(&target).await.expect("fresh store"))
        }
    };
    let runner = ProjectionRunner::new(
        stores.events.clone(),
        fresh,
        Arc::new(LabRecordsProjector),
        ProjectionProgress::default(),
    );
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                samples.push(resident_mib());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };
    let started = Instant::now();
    let read = runner.catch_up().await.expect("catch-up");
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let samples = peak.await.expect("sampler");
    let quarter = |q: usize| samples.get(samples.len() * q / 4).copied().unwrap_or(0.0);
    let projection_rate = read as f64 / elapsed.as_secs_f64();
    println!(
        "{read} events (head {head}) in {:.2} s: {projection_rate:.0} events/s; RSS over the run {:.0} / {:.0} / {:.0} / {:.0} MiB",
        elapsed.as_secs_f64(),
        quarter(0),
        quarter(1),
        quarter(2),
        quarter(3).max(samples.last().copied().unwrap_or(0.0))
    );
    drop(mediator);

    // 4. HTTP queries with 1,000 workers × 100 labs.
    println!(
        "\n== HTTP: GET /api/v1/workers/{{id}}/labs with {} workers × {} labs ==",
        args.workers, args.labs_per_worker
    );
    let query_dir = dir.path().join("queries");
    let settings = settings_in(&query_dir, args.postgres.as_deref(), &mut databases).await;
    let app = build(&settings).await.expect("app");
    let workers: Arc<Vec<Uuid>> = Arc::new((0..args.workers).map(|_| Uuid::now_v7()).collect());
    let per_worker = args.labs_per_worker;
    let fleet: Arc<dyn Fn(usize) -> (Uuid, usize) + Send + Sync> = {
        let workers = workers.clone();
        Arc::new(move |n| (workers[n / per_worker], n % per_worker))
    };
    let total_labs = args.workers * args.labs_per_worker;
    let (loaded, _) = drive(app.state.mediator.clone(), fleet, total_labs, 64, total_labs, 0).await;
    let head = app.stores.events.head_position().await.expect("head");
    app.state
        .progress
        .wait_for("lab_records", head, Duration::from_secs(600))
        .await
        .expect("projection catches up");
    println!(
        "loaded {total_labs} labs in {:.1} s (and projected them)",
        loaded.as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(app, listener, async {
        let _ = stopped.await;
    }));
    let client = lablet_tests::server::client_with_token(&lablet_tests::server::token(
        &settings,
        "bench",
        &[lablet_api::auth::Role::User],
    ));
    let clients = 4;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next, workers) = (client.clone(), next.clone(), workers.clone());
        let queries = args.queries;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= queries {
                    return latencies;
                }
                let worker = workers[(n * 7919) % workers.len()];
                let sent = Instant::now();
                let response = client
                    .get(format!("http://{addr}/api/v1/workers/{worker}/labs?limit=100"))
                    .send()
                    .await
                    .expect("query");
                assert_eq!(response.status(), 200);
                let body = response.bytes().await.expect("body");
                latencies.record(sent.elapsed());
                assert!(body.len() > 1000, "a worker's labs");
            }
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let elapsed = started.elapsed();
    let query_p99 = latencies.percentile_ms(99.0);
    println!(
        "{} queries by {clients} clients: {:.0} queries/s  p50 {:.3} ms  p99 {query_p99:.3} ms (100 labs per answer)",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies.percentile_ms(50.0)
    );
    let _ = stop.send(());
    let _ = server.await;

    // Summary against the targets.
    let batch64 = baselines.iter().find(|(b, _)| *b == 64).map_or(1.0, |(_, r)| *r);
    let (_, single_rate, single_p99) = results[0];
    let (_, concurrent_rate, _) = results[1];
    println!("\n== summary ==");
    println!("64 writers: {concurrent_rate:.0} commands/s = {:.2} × raw batch-64 baseline ({batch64:.0} rows/s)  [target ≥ 50,000 and ≥ 0.3 ×]", concurrent_rate / batch64);
    println!("1 writer: {single_rate:.0} commands/s, p99 {single_p99:.3} ms  [target p99 < 1 ms]");
    println!("projection: {projection_rate:.0} events/s  [target ≥ 100,000]");
    println!("query p99: {query_p99:.3} ms  [target < 5 ms]");
    for database in databases {
        database.drop_now().await;
    }
}
