//! `lablet-work-order-bench`: work orders through their whole life (submit, claim, start,
//! complete) by `--executors` no-op executors, through the port (the mediator) and over HTTP,
//! on the embedded store or on PostgreSQL; then the latency from submission to claim at a
//! steady `--rate`. Each run is checked against the log: every order completed exactly once.
//!
//! Run with `cargo run --release -p lablet-tests --bin lablet-work-order-bench`
//! (`-- --postgres postgres://postgres@127.0.0.1:5432/test` for PostgreSQL).

use clap::Parser;
use lablet_api::app::{build, serve_until};
use lablet_tests::bench::work_orders::{claim_latency, completions_in_log, throughput, Channel};

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
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("a data directory");
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    settings.lifecycle.enabled = false;
    settings.executors.concurrency = 0;
    let database = match &args.postgres {
        Some(server) => {
            let database = lablet_tests::postgres::TestDatabase::create_on(server).await;
            settings.event_store = lablet_infrastructure::config::StoreLocation::Postgres(database.url.clone());
            settings.read_models = lablet_infrastructure::config::StoreLocation::Postgres(database.url.clone());
            Some(database)
        }
        None => None,
    };
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
    let (completed, twice) = completions_in_log(&events).await;
    println!("  checked against the log: {completed} orders completed, {twice} completed twice");

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
    let (completed, twice) = completions_in_log(&events).await;
    println!("  checked against the log: {completed} orders completed in all, {twice} completed twice");
    let mut latencies = claim_latency(&http, args.latency_orders, args.rate, args.executors).await;
    println!(
        "{engine}, over HTTP at a steady {}/s: submit-to-claim p50 {:.1} ms, p99 {:.1} ms ({} orders)",
        args.rate,
        latencies.percentile_ms(50.0),
        latencies.percentile_ms(99.0),
        latencies.len()
    );
    let _ = stop.send(());
    let _ = server.await;
    if let Some(database) = database {
        database.drop_now().await;
    }
}
