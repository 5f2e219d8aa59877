//! Worker: a CML server that hosts labs, stream `cml_worker-<uuid>`.
//!
//! A worker moves along its status machine (provisioned, running, drained, stopped,
//! terminated), and Lablet's jobs keep its picture current: the CML service status, version,
//! license and figures from monitoring, the labs sync from the refresh, and the user activity
//! that idle detection reads. Monitoring records only what moved, so a quiet fleet writes almost
//! no events. Credentials never enter this aggregate; they are sealed elsewhere. The lablet
//! instances placed on a worker allocate their capacity and ports here (`allocation`).

mod aggregate;
mod allocation;
#[cfg(test)]
mod allocation_tests;
mod commands;
mod endpoint;
mod events;
mod idle;
mod state;
#[cfg(test)]
mod tests;
mod upcasters;

pub use aggregate::{figures_moved, Worker, COUNT_FRACTION_THRESHOLD, PERCENT_POINTS_THRESHOLD};
pub use allocation::{Allocation, AllocationRequest, Allocations, PortRange, DEFAULT_PORT_RANGE};
pub use commands::{Registration, ServiceObservation, WorkerCommand};
pub use endpoint::{check_endpoint, Endpoint};
pub use events::{Activity, Capacity, License, LicenseType, SyncCounts, WorkerEvent, WorkerMetrics};
pub use idle::{counts_as_activity, IdlePolicy, IdleStatus, AUTOMATED_USER_PREFIX, RECENT_ACTIVITY_LIMIT};
pub use state::{takes_work, ServiceStatus, WorkerStatus};
pub use upcasters::namespaced_actor;
