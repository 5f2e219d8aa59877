//! Capacity and ports on a worker. The worker's stream is the consistency boundary: an
//! allocation is a worker command, decided on the worker's current state with the same
//! [`placement::check`] the placement ran on its snapshot, so two schedulers racing for one
//! worker can never over-allocate it (the loser's append conflicts, and its retry sees the
//! winner's allocation).
//!
//! Ports come from the worker's range (2000–9999 by default), lowest free first, and are never
//! handed out twice at once. Allocating again for an instance that holds the same allocation
//! changes nothing, and releasing an instance that holds nothing changes nothing, so the steps
//! of the instance's lifecycle can be retried after a crash.

use super::aggregate::Worker;
use super::events::{Capacity, WorkerEvent};
use crate::kernel::DomainError;
use crate::placement::{self, Demand, WorkerSnapshot};
use crate::values::Name;
use crate::worker::LicenseType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The ports a worker hands out, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// The range every worker uses unless its template says otherwise.
pub const DEFAULT_PORT_RANGE: PortRange = PortRange {
    first: 2000,
    last: 9999,
};

impl Default for PortRange {
    fn default() -> Self {
        DEFAULT_PORT_RANGE
    }
}

impl PortRange {
    pub fn len(&self) -> usize {
        usize::from(self.last.saturating_sub(self.first)) + usize::from(self.first <= self.last)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one lablet instance holds on the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Allocation {
    pub capacity: Capacity,
    /// Port name → port.
    pub ports: BTreeMap<String, u16>,
}

/// An instance's request for capacity and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationRequest {
    pub instance_id: Uuid,
    /// CPU, memory, storage, and the definition's node count as `max_nodes`.
    pub capacity: Capacity,
    /// The definition's licenses (empty: any); checked again here.
    pub license_affinity: Vec<LicenseType>,
    /// The names of the ports it needs, each given one port.
    pub port_names: Vec<Name<64>>,
}

/// The allocations of a worker and the ports they hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Allocations {
    pub by_instance: BTreeMap<Uuid, Allocation>,
    pub ports_in_use: BTreeSet<u16>,
}

impl Allocations {
    /// The `count` lowest ports of `range` not in use, or None if there are fewer.
    fn lowest_free(&self, range: PortRange, count: usize) -> Option<Vec<u16>> {
        let free: Vec<u16> = (range.first..=range.last)
            .filter(|port| !self.ports_in_use.contains(port))
            .take(count)
            .collect();
        (free.len() == count).then_some(free)
    }

    pub(super) fn add(&mut self, instance_id: Uuid, allocation: Allocation) {
        self.ports_in_use.extend(allocation.ports.values().copied());
        self.by_instance.insert(instance_id, allocation);
    }

    pub(super) fn remove(&mut self, instance_id: Uuid) {
        if let Some(allocation) = self.by_instance.remove(&instance_id) {
            for port in allocation.ports.values() {
                self.ports_in_use.remove(port);
            }
        }
    }
}

impl Worker {
    /// Whether new work may be placed here now, and if not, why.
    pub fn takes_work_now(&self) -> Result<(), String> {
        if self.can_take_work() {
            return Ok(());
        }
        let status = self.status.map_or("unknown", |s| s.as_str());
        Err(format!(
            "status {status}, CML {}, {}",
            self.service_status.as_str(),
            if self.endpoint.is_some() {
                "endpoint set"
            } else {
                "no endpoint"
            }
        ))
    }

    /// What placement needs to know of this worker, under `id`.
    pub fn snapshot(&self, id: Uuid) -> WorkerSnapshot {
        WorkerSnapshot {
            id,
            takes_work: self.takes_work_now(),
            license: self.license.as_ref().and_then(|l| l.license_type),
            declared: self.declared_capacity,
            allocated: self.allocated_capacity,
            instances: self.allocations.by_instance.len(),
            free_ports: self
                .port_range
                .len()
                .saturating_sub(self.allocations.ports_in_use.len()),
        }
    }

    pub(super) fn allocate(
        &self,
        request: &AllocationRequest,
        at: DateTime<Utc>,
    ) -> Result<Vec<WorkerEvent>, DomainError> {
        let names: BTreeSet<&str> = request.port_names.iter().map(|n| n.as_str()).collect();
        if names.len() != request.port_names.len() {
            return Err(DomainError::InvalidValue {
                field: "port_names",
                message: "a port name appears twice".into(),
            });
        }
        if let Some(held) = self.allocations.by_instance.get(&request.instance_id) {
            let same_ports = held.ports.keys().map(String::as_str).eq(names.iter().copied());
            if held.capacity == request.capacity && same_ports {
                return Ok(Vec::new());
            }
            return Err(DomainError::RuleViolated(format!(
                "instance {} holds a different allocation on this worker",
                request.instance_id
            )));
        }
        let demand = Demand {
            capacity: request.capacity,
            license_affinity: request.license_affinity.clone(),
            ports: request.port_names.len(),
        };
        // The worker's own id does not matter to the check.
        placement::check(&self.snapshot(Uuid::nil()), &demand)
            .map_err(|why| DomainError::RuleViolated(format!("the worker cannot take it: {why}")))?;
        let ports = self
            .allocations
            .lowest_free(self.port_range, request.port_names.len())
            .ok_or_else(|| DomainError::RuleViolated("the worker has no ports free".into()))?;
        Ok(vec![WorkerEvent::CapacityAllocated {
            instance_id: request.instance_id,
            capacity: request.capacity,
            ports: request
                .port_names
                .iter()
                .map(|name| name.as_str().to_owned())
                .zip(ports)
                .collect(),
            allocated_at: at,
        }])
    }

    /// Each request decided on the worker as the ones before it left it; refused ones are left
    /// out.
    pub(super) fn allocate_all(&self, requests: &[AllocationRequest], at: DateTime<Utc>) -> Vec<WorkerEvent> {
        use crate::kernel::Aggregate;
        let mut after = self.clone();
        let mut events = Vec::new();
        for request in requests {
            if let Ok(taken) = after.allocate(request, at) {
                taken.iter().for_each(|event| after.apply(event));
                events.extend(taken);
            }
        }
        events
    }

    pub(super) fn release(&self, instance_id: Uuid, reason: &str, at: DateTime<Utc>) -> Vec<WorkerEvent> {
        match self.allocations.by_instance.get(&instance_id) {
            None => Vec::new(),
            Some(held) => vec![WorkerEvent::CapacityReleased {
                instance_id,
                capacity: held.capacity,
                ports: held.ports.clone(),
                reason: reason.to_owned(),
                released_at: at,
            }],
        }
    }
}
