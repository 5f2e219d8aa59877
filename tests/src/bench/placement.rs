//! The placement decision measured alone: its latency over a fleet, and how tightly it packs
//! compared with the lower bound and with first-fit on the same input. Inputs come from a
//! seeded generator, so every run places the same reservations on the same fleet.

use crate::bench::stats::Latencies;
use lablet_domain::placement::{check, place, Demand, WorkerSnapshot};
use lablet_domain::worker::{Capacity, LicenseType};
use std::time::Instant;
use uuid::Uuid;

/// SplitMix64: a small, seeded, good-enough generator for benchmark inputs.
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Self {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The worker template every benchmark worker is made from: 48 cores, 192 GB, 1 TB, 120 nodes.
pub const WORKER_CAPACITY: Capacity = Capacity {
    cpu_cores: 48,
    memory_gb: 192,
    storage_gb: 1000,
    max_nodes: 120,
};

/// Three definition sizes, as an exam catalogue has them (small, medium, large topologies).
pub const DEFINITION_SIZES: [Capacity; 3] = [
    Capacity {
        cpu_cores: 2,
        memory_gb: 8,
        storage_gb: 20,
        max_nodes: 4,
    },
    Capacity {
        cpu_cores: 6,
        memory_gb: 24,
        storage_gb: 60,
        max_nodes: 12,
    },
    Capacity {
        cpu_cores: 12,
        memory_gb: 40,
        storage_gb: 120,
        max_nodes: 30,
    },
];

/// `count` reservations of the three sizes, each needing two ports.
pub fn demands(count: usize, random: &mut Seeded) -> Vec<Demand> {
    (0..count)
        .map(|_| Demand {
            capacity: DEFINITION_SIZES[random.below(3) as usize],
            license_affinity: vec![LicenseType::Enterprise],
            ports: 2,
        })
        .collect()
}

/// `count` enterprise workers, empty, or filled to a random part of their capacity.
pub fn fleet(count: usize, random: Option<&mut Seeded>) -> Vec<WorkerSnapshot> {
    let mut random = random;
    (0..count)
        .map(|i| {
            let share = random.as_deref_mut().map_or(0, |r| r.below(90));
            let used = |total: u32| total * share as u32 / 100;
            WorkerSnapshot {
                id: Uuid::from_u128(i as u128 + 1),
                takes_work: Ok(()),
                license: Some(LicenseType::Enterprise),
                declared: WORKER_CAPACITY,
                allocated: Capacity {
                    cpu_cores: used(WORKER_CAPACITY.cpu_cores),
                    memory_gb: used(WORKER_CAPACITY.memory_gb),
                    storage_gb: used(WORKER_CAPACITY.storage_gb),
                    max_nodes: used(WORKER_CAPACITY.max_nodes),
                },
                instances: usize::from(share > 0),
                free_ports: 8000,
            }
        })
        .collect()
}

/// The latency of `place` for each of `demands` over `fleet` (nothing is allocated).
pub fn decision_latencies(fleet: &[WorkerSnapshot], demands: &[Demand]) -> Latencies {
    let mut latencies = Latencies::default();
    for demand in demands {
        let started = Instant::now();
        let decision = place(demand, fleet);
        latencies.record(started.elapsed());
        std::hint::black_box(decision);
    }
    latencies
}

/// One step of a packing run: a reservation arrives, or an earlier one (by arrival number)
/// ends and gives its capacity back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Arrive(Demand),
    Depart(usize),
}

/// `arrivals` reservations; after each, with probability `churn`, one still placed ends (exam
/// sessions end while others start, which is what fragments a fleet).
pub fn steps(arrivals: usize, churn: f64, random: &mut Seeded) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    for (arrival, demand) in demands(arrivals, random).into_iter().enumerate() {
        steps.push(Step::Arrive(demand));
        live.push(arrival);
        if (random.below(1000) as f64) < churn * 1000.0 {
            let ending = live.swap_remove(random.below(live.len() as u64) as usize);
            steps.push(Step::Depart(ending));
        }
    }
    steps
}

/// The reservations still placed at the end of `steps`.
pub fn remaining(steps: &[Step]) -> Vec<Demand> {
    let mut live: Vec<Option<Demand>> = Vec::new();
    for step in steps {
        match step {
            Step::Arrive(demand) => live.push(Some(demand.clone())),
            Step::Depart(arrival) => live[*arrival] = None,
        }
    }
    live.into_iter().flatten().collect()
}

/// How a packing went: reservations placed, turned away, and workers in use at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    pub placed: usize,
    pub unplaced: usize,
    pub workers_used: usize,
}

/// Runs `steps` on `fleet`, each arrival going where `choose` says.
pub fn pack(
    mut fleet: Vec<WorkerSnapshot>,
    steps: &[Step],
    choose: impl Fn(&[WorkerSnapshot], &Demand) -> Option<usize>,
) -> Packing {
    let (mut placed, mut unplaced) = (0, 0);
    let mut held: Vec<Option<(usize, Capacity, usize)>> = Vec::new();
    for step in steps {
        match step {
            Step::Arrive(demand) => match choose(&fleet, demand) {
                Some(index) => {
                    fleet[index].take(demand);
                    held.push(Some((index, demand.capacity, demand.ports)));
                    placed += 1;
                }
                None => {
                    held.push(None);
                    unplaced += 1;
                }
            },
            Step::Depart(arrival) => {
                if let Some((index, capacity, ports)) = held[*arrival].take() {
                    let worker = &mut fleet[index];
                    worker.allocated = worker.allocated.minus(capacity);
                    worker.instances -= 1;
                    worker.free_ports += ports;
                }
            }
        }
    }
    Packing {
        placed,
        unplaced,
        workers_used: fleet.iter().filter(|w| w.instances > 0).count(),
    }
}

/// Lablet's placement: the fullest worker that fits.
pub fn fullest_that_fits(fleet: &[WorkerSnapshot], demand: &Demand) -> Option<usize> {
    place(demand, fleet)
        .chosen
        .map(|id| fleet.iter().position(|w| w.id == id).expect("a worker of the fleet"))
}

/// The peer: the first worker (by id) where the reservation fits.
pub fn first_fit(fleet: &[WorkerSnapshot], demand: &Demand) -> Option<usize> {
    fleet.iter().position(|worker| check(worker, demand).is_ok())
}

/// The fewest workers the demands could fit on: the total demand over one worker's capacity,
/// in the tightest dimension.
pub fn lower_bound(demands: &[Demand]) -> usize {
    let total = demands
        .iter()
        .fold(Capacity::default(), |sum, demand| sum.plus(demand.capacity));
    let ceil = |need: u32, have: u32| need.div_ceil(have.max(1)) as usize;
    [
        ceil(total.cpu_cores, WORKER_CAPACITY.cpu_cores),
        ceil(total.memory_gb, WORKER_CAPACITY.memory_gb),
        ceil(total.storage_gb, WORKER_CAPACITY.storage_gb),
        ceil(total.max_nodes, WORKER_CAPACITY.max_nodes),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}
