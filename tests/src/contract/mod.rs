//! Contract suites: one per port, written once, run against every adapter of that port. An
//! adapter is done when its suite passes against the real engine.

pub mod event_store;
pub mod fenced_runners;
pub mod leases;
pub mod outbox;
pub mod read_models;
pub mod rebuilds;
