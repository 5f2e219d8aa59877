//! `lablet-placement-bench`: the placement decision alone. Prints its latency over a fleet of
//! `--workers` partly filled workers, and the workers in use after `--reservations`
//! reservations arrive one by one on an empty fleet while earlier ones end (`--churn`): Lablet's
//! placement (the fullest that fits) against the lower bound (the remaining demand over one
//! worker's capacity) and against first-fit on the same input.
//!
//! Run with `cargo run --release -p lablet-tests --bin lablet-placement-bench`.

use clap::Parser;
use lablet_tests::bench::placement::{
    decision_latencies, demands, first_fit, fleet, fullest_that_fits, lower_bound, pack, remaining, steps, Seeded,
};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Lablet placement benchmark: decision latency and packing against first-fit")]
struct Args {
    /// Workers in the fleet the decision latency is measured over.
    #[arg(long, default_value_t = 1_000)]
    workers: usize,
    /// Decisions timed.
    #[arg(long, default_value_t = 10_000)]
    decisions: usize,
    /// Reservations packed onto an empty fleet of `--packing-workers`.
    #[arg(long, default_value_t = 10_000)]
    reservations: usize,
    #[arg(long, default_value_t = 5_000)]
    packing_workers: usize,
    /// After each arrival, the chance that a reservation still placed ends.
    #[arg(long, default_value_t = 0.4)]
    churn: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Also place with every decision durably recorded, in a running application: this many
    /// workers …
    #[arg(long, default_value_t = 0)]
    durable_workers: usize,
    /// … and this many pending reservations.
    #[arg(long, default_value_t = 10_000)]
    durable_reservations: usize,
    /// Schedulers passing at once in the durable run (2: what two replicas would do).
    #[arg(long, default_value_t = 1)]
    schedulers: usize,
    /// A PostgreSQL server for the durable run's log and read models (else embedded SQLite).
    #[arg(long)]
    postgres: Option<String>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    let mut random = Seeded::new(args.seed);
    let partly_full = fleet(args.workers, Some(&mut random));
    let timed = demands(args.decisions, &mut random);
    let mut latencies = decision_latencies(&partly_full, &timed);
    println!(
        "decision over {} workers: {} decisions, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        args.workers,
        latencies.len(),
        latencies.percentile_ms(50.0),
        latencies.percentile_ms(99.0),
        latencies.percentile_ms(100.0)
    );

    let steps = steps(args.reservations, args.churn, &mut random);
    let bound = lower_bound(&remaining(&steps));
    let started = Instant::now();
    let ours = pack(fleet(args.packing_workers, None), &steps, fullest_that_fits);
    let seconds = started.elapsed().as_secs_f64();
    let peer = pack(fleet(args.packing_workers, None), &steps, first_fit);
    println!(
        "packing {} arrivals (churn {}) on {} empty workers: {} still placed, lower bound {bound} workers",
        args.reservations,
        args.churn,
        args.packing_workers,
        remaining(&steps).len()
    );
    println!(
        "  placement (fullest that fits): {} workers ({:.3} x the bound), {} unplaced, {:.0} decisions/s",
        ours.workers_used,
        ours.workers_used as f64 / bound.max(1) as f64,
        ours.unplaced,
        (ours.placed + ours.unplaced) as f64 / seconds.max(1e-9)
    );
    println!(
        "  first-fit (peer):              {} workers ({:.3} x the bound), {} unplaced",
        peer.workers_used,
        peer.workers_used as f64 / bound.max(1) as f64,
        peer.unplaced
    );
    if args.durable_workers > 0 {
        durable(&args).await;
    }
}

/// The durable run, on SQLite or on PostgreSQL.
async fn durable(args: &Args) {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut settings = lablet_infrastructure::Settings::defaults_in(dir.path());
    let database = lablet_tests::bench::stores_on(&mut settings, args.postgres.as_deref()).await;
    lablet_migrations::migrate_all(&settings).await.expect("migrations");
    let engine = if database.is_some() { "PostgreSQL" } else { "SQLite" };
    let run = lablet_tests::bench::durable_placement::run(
        settings,
        args.durable_workers,
        args.durable_reservations,
        args.schedulers,
    )
    .await;
    println!(
        "durable placement on {engine}, {} workers, {} reservations, {} scheduler(s): {} placed in {:.1} s = {:.0} placements/s (each: an allocation on the worker and the instance scheduled, both appended)",
        args.durable_workers,
        args.durable_reservations,
        args.schedulers,
        run.placed,
        run.seconds,
        run.placed as f64 / run.seconds.max(1e-9)
    );
    println!(
        "  checked against the streams: {} over-allocated workers, {} ports held twice, {} allocations not matching their instance, {} scheduled instances without their allocation",
        run.over_allocated, run.ports_twice, run.stray_allocations, run.unallocated
    );
    if let Some(database) = database {
        database.drop_now().await;
    }
}
