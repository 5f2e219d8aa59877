//! Lablet's application layer: the mediator, the commands and queries with their handlers, and
//! the ports (traits) those handlers need from the outside world.
//!
//! Handlers speak only to ports: an event store, a read-model store, a clock. Adapters for real
//! engines live in `lablet-infrastructure`; this crate never opens a file or a socket.

pub mod audit;
pub mod commands;
pub mod context;
pub mod definitions;
pub mod envelope;
pub mod error;
pub mod executors;
pub mod fleet;
pub mod inbox;
pub mod instances;
pub mod leadership;
pub mod lifecycle;
pub mod mediator;
pub mod metrics;
pub mod outbox;
pub mod ports;
pub mod progress;
pub mod read_model_queries;
pub mod repository;
pub mod scheduling;
pub mod shutdown;
pub mod subscription;
pub mod trace_context;
pub mod work_orders;
pub mod workers;

pub use commands::Execute;
pub use context::RequestContext;
pub use envelope::{EventEnvelope, EventMetadata, NewEvent};
pub use error::{AppError, FieldError};
pub use mediator::Mediator;
