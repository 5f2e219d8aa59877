//! `lablet-work-order-bench`: work orders through their whole life (submit, claim, start,
//! complete) by `--executors` no-op executors, through the port (the mediator) and over HTTP,
//! on the embedded store or on PostgreSQL; then the latency from submission to claim at a
//! steady `--rate`; then `--kill-orders` orders run by executor processes of which one at
//! random is killed with SIGKILL every `--kill-every-ms` until half are done. Each run is
//! checked against the log: every order completed exactly once.
//!
//! Run with `cargo run --release -p lablet-tests --bin lablet-work-order-bench`
//! (`-- --postgres postgres://postgres@127.0.0.1:5432/test` for PostgreSQL).

use clap::Parser;
use lablet_api::app::{build, serve_until};
use lablet_tests::bench::work_orders::{claim_latency, count_in_log, kill_run, remote_executor, throughput, Channel};

#[derive(Parser)]
#[command(about = "Lablet work-order benchmark: throughput and submit-to-claim latency")]
struct Args {
    /// Orders per throughput run.
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    #[arg(long, default_value_t = 16)]
    executors: usize,
    /// Orders submitted at the steady rate for the latency run.
    #[arg(long, default_value_t = 2_000)]
    latency_orders: usize,
    /// Orders a second in the latency run.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// A PostgreSQL server for the log and the read models (else embedded SQLite).
    #[arg(long)]
    postgres: Option<String>,
    /// Orders of the run under kills (0: no such run).
    #[arg(long, default_value_t = 5_000)]
    kill_orders: usize,
    #[arg(long, default_value_t = 300)]
    kill_every_ms: u64,
    /// Run as one executor process of the run under kills, on this server (internal).
    #[arg(long, hide = true)]
    executor_of: Option<String>,
    #[arg(long, hide = true)]
    data_dir: Option<std::path::PathBuf>,
    #[arg(long, hide = true, default_value = "executor")]
    name: String,
}

/// The lease executors take in the run under kills: a dead one's orders come back within it.
const KILL_RUN_LEASE_SECONDS: u32 = 2;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    if let (Some(base), Some(data_dir)) = (&args.executor_of, &args.data_dir) {
        let channel = Channel::Http {
            client: lablet_tests::server::admin_client(data_dir),
            base: base.clone(),
        };
        remote_executor(channel, args.name.clone(), KILL_RUN_LEASE_SECONDS).await;
        return;
    }
    let dir = tempfile::tempdir().expect("a data directory");
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.work_order_tick = std::time::Duration::from_millis(200);
    settings.lifecycle.enabled = false;
    settings.executors.concurrency = 0;
    let database = lablet_tests::bench::stores_on(&mut settings, args.postgres.as_deref()).await;
    let engine = if database.is_some() { "PostgreSQL" } else { "SQLite" };
    let app = build(&settings).await.expect("the application starts");
    let mediator = app.state.mediator.clone();
    let port = Channel::Port(mediator);
    let run = throughput(&port, args.orders, args.executors).await;
    println!(
        "{engine}, through the port: {} orders by {} executors in {:.2} s = {:.0} orders/s ({} refused claims)",
        run.orders,
        args.executors,
        run.seconds,
        run.orders as f64 / run.seconds,
        run.refused
    );
    let events = app.stores.events.clone();
    let count = count_in_log(&events).await;
    println!(
        "  checked against the log: {} orders completed, {} completed twice",
        count.completed, count.completed_twice
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let admin = lablet_tests::server::admin_client(dir.path());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(app, listener, async move {
        let _ = stopped.await;
    }));
    let http = Channel::Http {
        client: admin,
        base: base.clone(),
    };
    lablet_tests::server::wait_ready(&reqwest::Client::new(), &format!("{base}/health/ready")).await;
    let run = throughput(&http, args.orders, args.executors).await;
    println!(
        "{engine}, over HTTP: {} orders by {} executors in {:.2} s = {:.0} orders/s ({} refused claims)",
        run.orders,
        args.executors,
        run.seconds,
        run.orders as f64 / run.seconds,
        run.refused
    );
    let count = count_in_log(&events).await;
    println!(
        "  checked against the log: {} orders completed in all, {} completed twice",
        count.completed, count.completed_twice
    );
    let mut latencies = claim_latency(&http, args.latency_orders, args.rate, args.executors).await;
    println!(
        "{engine}, over HTTP at a steady {}/s: submit-to-claim p50 {:.1} ms, p99 {:.1} ms ({} orders)",
        args.rate,
        latencies.percentile_ms(50.0),
        latencies.percentile_ms(99.0),
        latencies.len()
    );
    if args.kill_orders > 0 {
        let before = count_in_log(&events).await;
        let exe = std::env::current_exe().expect("this program");
        let data_dir = dir.path().to_owned();
        let spawn = |n: usize| {
            std::process::Command::new(&exe)
                .args(["--executor-of", &base, "--name", &format!("killable-{n}")])
                .arg("--data-dir")
                .arg(&data_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("an executor process")
        };
        let run = kill_run(
            &http,
            &events,
            (args.kill_orders, before.completed),
            args.executors,
            std::time::Duration::from_millis(args.kill_every_ms),
            spawn,
        )
        .await;
        let orders = args.kill_orders;
        println!(
            "{engine}, {orders} orders by {} executor processes, one killed (SIGKILL) every {} ms until half were done: {} kills; {} lost, {} failed, {} completed twice, {} run again; all final {:.1} s after the last kill",
            args.executors,
            args.kill_every_ms,
            run.kills,
            (before.completed + orders).saturating_sub(run.count.completed + run.count.failed),
            run.count.failed,
            run.count.completed_twice,
            run.count.run_again - before.run_again,
            run.settled_after.as_secs_f64()
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    if let Some(database) = database {
        database.drop_now().await;
    }
}
