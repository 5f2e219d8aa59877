//! The fleet jobs: keep Lablet's picture of every worker and its labs current.
//!
//! - [`refresh`]: every 30 minutes (and on demand, throttled), list each workable worker's labs
//!   and observe them; labs that vanished are removed.
//! - [`monitoring`]: every 5 minutes, ask each worker for its system information, health, stats
//!   and licensing, and its telemetry for idle detection; only what moved is recorded.
//!
//! Jobs act through the mediator like any caller (as the `system` actor), so every change they
//! make is a command with its events, metrics and traces.

pub mod monitoring;
pub mod refresh;
mod roster;
mod scheduler;

pub use roster::{list_workers, RosterEntry};
pub use scheduler::FleetScheduler;

use lablet_domain::worker::IdlePolicy;
use std::time::Duration;

/// How often and how widely the fleet jobs run.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    /// `LABLET_LABS_REFRESH_INTERVAL` (30 minutes).
    pub labs_refresh_interval: Duration,
    /// Workers refreshed at once (5).
    pub refresh_concurrency: usize,
    /// `LABLET_MONITORING_INTERVAL` (5 minutes).
    pub monitoring_interval: Duration,
    /// A worker is refreshed on demand at most once per this gap (10 s).
    pub manual_refresh_gap: Duration,
    pub idle_policy: IdlePolicy,
    /// Run the jobs at all (off for tools that only serve the API).
    pub enabled: bool,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            labs_refresh_interval: Duration::from_secs(30 * 60),
            refresh_concurrency: 5,
            monitoring_interval: Duration::from_secs(5 * 60),
            manual_refresh_gap: Duration::from_secs(10),
            idle_policy: IdlePolicy::default(),
            enabled: true,
        }
    }
}
