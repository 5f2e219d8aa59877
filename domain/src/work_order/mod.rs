//! WorkOrder: one unit of work pulled by an executor, stream `work_order-<uuid>`.
//!
//! Executors lease pending orders, start them, and report the outcome. A retryable failure waits
//! with exponential backoff and jitter until attempts run out; the jitter arrives in the command,
//! so deciding stays pure.

mod aggregate;
mod commands;
mod events;
mod retry;
mod state;

pub use aggregate::{WorkOrder, MAX_ATTEMPTS};
pub use commands::{Submission, WorkOrderCommand};
pub use events::{Lease, ResourceNeeds, WorkOrderEvent};
pub use retry::RetryPolicy;
pub use state::WorkOrderState;
