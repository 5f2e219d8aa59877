//! Placement: where a reservation goes. A pure function of the demand (the definition's needs)
//! and a snapshot of the fleet, so that it can be tested exhaustively and explained: the answer
//! names the chosen worker **and** why every other worker was rejected.
//!
//! A worker is a candidate when it takes work (running, CML available, an endpoint set), its
//! license covers the definition's affinity (enterprise covers personal), its available
//! capacity fits every dimension, it has the ports free, and, on a personal license, it holds
//! no other instance and stays within 20 nodes. Among the candidates the fullest after the
//! placement wins (bin-packing: the mean of its utilisation over the dimensions it declares),
//! ties broken by the lowest worker id, so the same fleet always gives the same answer.
//!
//! The worker's own allocate decision runs [`check`] again on its stream, which is the
//! consistency boundary: a placement made on a stale snapshot is refused there, never
//! over-allocated.

use crate::lablet_instance::{PlacementSummary, RejectedWorker};
use crate::worker::{Capacity, LicenseType};
use serde::Serialize;
use uuid::Uuid;

/// A personal-license worker holds at most this many instances …
pub const PERSONAL_MAX_INSTANCES: usize = 1;
/// … and at most this many nodes.
pub const PERSONAL_MAX_NODES: u32 = 20;

/// What a reservation needs from a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// CPU, memory, storage, and the definition's node count as `max_nodes`.
    pub capacity: Capacity,
    /// Licenses the definition runs under; empty means any.
    pub license_affinity: Vec<LicenseType>,
    /// How many ports it needs.
    pub ports: usize,
}

/// What placement needs to know of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSnapshot {
    pub id: Uuid,
    /// Running, CML available and an endpoint set; when not, why not.
    pub takes_work: Result<(), String>,
    pub license: Option<LicenseType>,
    pub declared: Capacity,
    pub allocated: Capacity,
    /// Instances placed on it now.
    pub instances: usize,
    pub free_ports: usize,
}

impl WorkerSnapshot {
    /// Counts `demand` as placed here, so that the next decision on the same snapshot sees it.
    pub fn take(&mut self, demand: &Demand) {
        self.allocated = self.allocated.plus(demand.capacity);
        self.instances += 1;
        self.free_ports = self.free_ports.saturating_sub(demand.ports);
    }
}

/// Why a worker cannot take a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    /// Not running, CML not available, or no endpoint.
    NotTakingWork { detail: String },
    /// Its license does not cover the definition's affinity.
    License {
        license: Option<LicenseType>,
        wanted: Vec<LicenseType>,
    },
    /// One dimension does not fit.
    Capacity {
        dimension: &'static str,
        needed: u32,
        available: u32,
    },
    /// Not enough free ports.
    Ports { needed: usize, free: usize },
    /// A personal license holds one instance of at most 20 nodes.
    PersonalLimit { detail: String },
    /// It fits, but a fuller worker was chosen (fullness after placement, in per mille).
    LessFull { fullness: u32, chosen_fullness: u32 },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NotTakingWork { detail } => write!(f, "it takes no work ({detail})"),
            Rejection::License { license, wanted } => {
                let license = license.map_or("unknown".to_owned(), |l| format!("{l:?}").to_lowercase());
                write!(f, "its license ({license}) does not cover {wanted:?}")
            }
            Rejection::Capacity {
                dimension,
                needed,
                available,
            } => write!(f, "{dimension}: {needed} needed, {available} available"),
            Rejection::Ports { needed, free } => write!(f, "{needed} ports needed, {free} free"),
            Rejection::PersonalLimit { detail } => write!(f, "personal license limit: {detail}"),
            Rejection::LessFull {
                fullness,
                chosen_fullness,
            } => write!(
                f,
                "a fuller worker was chosen ({chosen_fullness}‰ full after placement, this one {fullness}‰)"
            ),
        }
    }
}

/// One worker turned down, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Rejected {
    pub worker_id: Uuid,
    #[serde(flatten)]
    pub why: Rejection,
}

/// The answer: the chosen worker (none when nothing fits) and every rejection, by worker id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Decision {
    pub chosen: Option<Uuid>,
    pub candidates: usize,
    pub rejected: Vec<Rejected>,
}

impl Rejection {
    /// The reason's name, as it is counted in a [`PlacementSummary`].
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::NotTakingWork { .. } => "not_taking_work",
            Rejection::License { .. } => "license",
            Rejection::Capacity { .. } => "capacity",
            Rejection::Ports { .. } => "ports",
            Rejection::PersonalLimit { .. } => "personal_limit",
            Rejection::LessFull { .. } => "less_full",
        }
    }
}

impl Decision {
    /// What to keep of the decision with the instance: counts per reason and the first few
    /// rejected workers in words.
    pub fn summary(&self) -> PlacementSummary {
        let mut rejected = std::collections::BTreeMap::new();
        for r in &self.rejected {
            *rejected.entry(r.why.kind().to_owned()).or_insert(0u32) += 1;
        }
        PlacementSummary {
            candidates: u32::try_from(self.candidates).unwrap_or(u32::MAX),
            rejected,
            examples: self
                .rejected
                .iter()
                .take(PlacementSummary::EXAMPLES)
                .map(|r| RejectedWorker {
                    worker_id: r.worker_id,
                    reason: r.why.to_string(),
                })
                .collect(),
        }
    }

    /// Why nothing fits, in words: each reason with its count (`3 capacity, 1 license`).
    pub fn why_none(&self) -> String {
        if self.rejected.is_empty() {
            return "no worker is registered".into();
        }
        let summary = self.summary();
        let counts: Vec<String> = summary
            .rejected
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        format!("no worker can take it: {}", counts.join(", "))
    }
}

/// Whether `license` covers a definition that runs under any of `wanted` (empty: any).
pub fn license_covers(license: Option<LicenseType>, wanted: &[LicenseType]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    match license {
        None => false,
        Some(LicenseType::Enterprise) => wanted
            .iter()
            .any(|w| matches!(w, LicenseType::Enterprise | LicenseType::Personal)),
        Some(license) => wanted.contains(&license),
    }
}

/// Each dimension with its name, needed and available amounts.
fn dimensions(needed: Capacity, available: Capacity) -> [(&'static str, u32, u32); 4] {
    [
        ("cpu_cores", needed.cpu_cores, available.cpu_cores),
        ("memory_gb", needed.memory_gb, available.memory_gb),
        ("storage_gb", needed.storage_gb, available.storage_gb),
        ("max_nodes", needed.max_nodes, available.max_nodes),
    ]
}

/// Whether `worker` can take `demand` now; the first reason it cannot.
pub fn check(worker: &WorkerSnapshot, demand: &Demand) -> Result<(), Rejection> {
    if let Err(detail) = &worker.takes_work {
        return Err(Rejection::NotTakingWork { detail: detail.clone() });
    }
    if !license_covers(worker.license, &demand.license_affinity) {
        return Err(Rejection::License {
            license: worker.license,
            wanted: demand.license_affinity.clone(),
        });
    }
    let available = worker.declared.minus(worker.allocated);
    for (dimension, needed, available) in dimensions(demand.capacity, available) {
        if needed > available {
            return Err(Rejection::Capacity {
                dimension,
                needed,
                available,
            });
        }
    }
    if demand.ports > worker.free_ports {
        return Err(Rejection::Ports {
            needed: demand.ports,
            free: worker.free_ports,
        });
    }
    if worker.license == Some(LicenseType::Personal) {
        if worker.instances >= PERSONAL_MAX_INSTANCES {
            return Err(Rejection::PersonalLimit {
                detail: format!("it holds {} instance(s) already", worker.instances),
            });
        }
        let nodes = worker.allocated.max_nodes + demand.capacity.max_nodes;
        if nodes > PERSONAL_MAX_NODES {
            return Err(Rejection::PersonalLimit {
                detail: format!("{nodes} nodes is more than {PERSONAL_MAX_NODES}"),
            });
        }
    }
    Ok(())
}

/// How full `worker` is once it holds `demand` too: the mean utilisation over the dimensions it
/// declares (0 when it declares none).
fn fullness_after(worker: &WorkerSnapshot, demand: &Demand) -> f64 {
    let used = |allocated: u32, needed: u32, declared: u32| {
        (declared > 0).then(|| f64::from(allocated.saturating_add(needed)) / f64::from(declared))
    };
    let (d, a, n) = (worker.declared, worker.allocated, demand.capacity);
    let shares: Vec<f64> = [
        used(a.cpu_cores, n.cpu_cores, d.cpu_cores),
        used(a.memory_gb, n.memory_gb, d.memory_gb),
        used(a.storage_gb, n.storage_gb, d.storage_gb),
        used(a.max_nodes, n.max_nodes, d.max_nodes),
    ]
    .into_iter()
    .flatten()
    .collect();
    if shares.is_empty() {
        0.0
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    }
}

/// Fullness as a whole number of per mille, for explanations.
fn per_mille(fullness: f64) -> u32 {
    (fullness * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Places `demand` on one of `workers`: the fullest candidate after placement, the lowest id on
/// a tie; and why each other worker was rejected (the candidates that lost: `less_full`).
pub fn place(demand: &Demand, workers: &[WorkerSnapshot]) -> Decision {
    let mut fitting: Vec<(Uuid, f64)> = Vec::new();
    let mut rejected = Vec::new();
    for worker in workers {
        match check(worker, demand) {
            Err(why) => rejected.push(Rejected {
                worker_id: worker.id,
                why,
            }),
            Ok(()) => fitting.push((worker.id, fullness_after(worker, demand))),
        }
    }
    let best = fitting
        .iter()
        .copied()
        .max_by(|(a_id, a), (b_id, b)| a.total_cmp(b).then_with(|| b_id.cmp(a_id)));
    if let Some((chosen, chosen_fullness)) = best {
        for &(worker_id, fullness) in fitting.iter().filter(|(id, _)| *id != chosen) {
            rejected.push(Rejected {
                worker_id,
                why: Rejection::LessFull {
                    fullness: per_mille(fullness),
                    chosen_fullness: per_mille(chosen_fullness),
                },
            });
        }
    }
    rejected.sort_by_key(|r| r.worker_id);
    Decision {
        chosen: best.map(|(id, _)| id),
        candidates: fitting.len(),
        rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: u128, allocated_cores: u32) -> WorkerSnapshot {
        WorkerSnapshot {
            id: Uuid::from_u128(id),
            takes_work: Ok(()),
            license: Some(LicenseType::Enterprise),
            declared: Capacity {
                cpu_cores: 16,
                memory_gb: 64,
                storage_gb: 100,
                max_nodes: 40,
            },
            allocated: Capacity {
                cpu_cores: allocated_cores,
                ..Capacity::default()
            },
            instances: usize::from(allocated_cores > 0),
            free_ports: 100,
        }
    }

    fn demand(cores: u32) -> Demand {
        Demand {
            capacity: Capacity {
                cpu_cores: cores,
                memory_gb: 4,
                storage_gb: 10,
                max_nodes: 5,
            },
            license_affinity: Vec::new(),
            ports: 2,
        }
    }

    fn why(decision: &Decision, id: u128) -> &Rejection {
        &decision
            .rejected
            .iter()
            .find(|r| r.worker_id == Uuid::from_u128(id))
            .expect("a rejection")
            .why
    }

    #[test]
    fn the_fullest_worker_that_fits_wins_and_every_other_is_explained() {
        let workers = [worker(1, 2), worker(2, 10), worker(3, 14), worker(4, 0)];
        let decision = place(&demand(4), &workers);
        assert_eq!(
            decision.chosen,
            Some(Uuid::from_u128(2)),
            "10 + 4 of 16 is the fullest fit"
        );
        assert_eq!(decision.candidates, 3);
        assert_eq!(decision.rejected.len(), 3);
        assert!(matches!(
            why(&decision, 3),
            Rejection::Capacity {
                dimension: "cpu_cores",
                needed: 4,
                available: 2
            }
        ));
        assert!(matches!(why(&decision, 1), Rejection::LessFull { .. }));
        assert!(matches!(why(&decision, 4), Rejection::LessFull { .. }));
    }

    #[test]
    fn ties_go_to_the_lowest_id_whatever_the_order() {
        let forward = [worker(7, 4), worker(3, 4), worker(9, 4)];
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(place(&demand(2), &forward).chosen, Some(Uuid::from_u128(3)));
        assert_eq!(place(&demand(2), &backward).chosen, Some(Uuid::from_u128(3)));
    }

    #[test]
    fn each_filter_rejects_with_its_reason() {
        let mut idle = worker(1, 0);
        idle.takes_work = Err("status draining".into());
        let mut unlicensed = worker(2, 0);
        unlicensed.license = None;
        let mut portless = worker(3, 0);
        portless.free_ports = 1;
        let mut personal = worker(4, 0);
        personal.license = Some(LicenseType::Personal);
        personal.instances = 1;
        let mut evaluation = worker(5, 0);
        evaluation.license = Some(LicenseType::Evaluation);
        let wanted = Demand {
            license_affinity: vec![LicenseType::Personal],
            ..demand(1)
        };
        let decision = place(&wanted, &[idle, unlicensed, portless, personal, evaluation]);
        assert_eq!(decision.chosen, None);
        assert_eq!(decision.candidates, 0);
        assert!(matches!(why(&decision, 1), Rejection::NotTakingWork { .. }));
        assert!(matches!(why(&decision, 2), Rejection::License { license: None, .. }));
        assert!(matches!(why(&decision, 3), Rejection::Ports { needed: 2, free: 1 }));
        assert!(matches!(why(&decision, 4), Rejection::PersonalLimit { .. }));
        assert!(matches!(why(&decision, 5), Rejection::License { .. }));
    }

    #[test]
    fn enterprise_covers_personal_and_no_affinity_takes_any_license() {
        assert!(license_covers(Some(LicenseType::Enterprise), &[LicenseType::Personal]));
        assert!(!license_covers(Some(LicenseType::Personal), &[LicenseType::Enterprise]));
        assert!(!license_covers(
            Some(LicenseType::Enterprise),
            &[LicenseType::Evaluation]
        ));
        assert!(license_covers(None, &[]));
        assert!(license_covers(Some(LicenseType::Evaluation), &[]));
    }

    #[test]
    fn a_personal_worker_is_limited_to_twenty_nodes() {
        let mut personal = worker(1, 0);
        personal.license = Some(LicenseType::Personal);
        personal.instances = 0;
        let mut big = demand(1);
        big.capacity.max_nodes = 21;
        assert!(matches!(check(&personal, &big), Err(Rejection::PersonalLimit { .. })));
        big.capacity.max_nodes = 20;
        assert_eq!(check(&personal, &big), Ok(()));
    }

    #[test]
    fn every_dimension_is_checked() {
        let full = worker(1, 0);
        for (dimension, mut needs) in [
            ("memory_gb", demand(1)),
            ("storage_gb", demand(1)),
            ("max_nodes", demand(1)),
        ] {
            match dimension {
                "memory_gb" => needs.capacity.memory_gb = 65,
                "storage_gb" => needs.capacity.storage_gb = 101,
                _ => needs.capacity.max_nodes = 41,
            }
            assert!(
                matches!(check(&full, &needs), Err(Rejection::Capacity { dimension: d, .. }) if d == dimension),
                "{dimension}"
            );
        }
    }
}
