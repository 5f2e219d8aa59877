//! Every black-box test of Lablet in one test binary: each module drives the real server (in
//! process or as a child process) over HTTP, or runs a contract suite against an adapter.
//! One binary links the whole stack once instead of once per file.

mod audit;
mod bad_input;
mod capacity;
mod cml_client;
mod crash;
mod definition_sync;
mod definitions;
mod fleet;
mod golden_events;
mod inbox;
mod instances_api;
mod kurrentdb_contracts;
mod lab_records_api;
mod lifecycle;
mod lifecycle_crash;
mod limits;
mod live;
mod metrics;
mod mongo_contracts;
mod oidc;
mod outbox;
mod postgres_contracts;
mod projections;
mod read_your_writes;
mod rebuilds;
mod replicas;
mod scheduling;
mod security;
mod shutdown;
mod sqlite_contracts;
mod telemetry;
mod tidy;
mod work_order_claims;
mod work_orders_api;
mod worker_templates;
