//! WorkOrder: one unit of work pulled by an executor, stream `work_order-<uuid>`.
//!
//! Executors lease pending orders, start them, and report the outcome. A retryable failure waits
//! with exponential backoff and jitter until attempts run out; the jitter arrives in the
//! decision's context, so deciding stays pure.
//!
//! One name per step: an executor *leases* an order (command `Lease`, event
//! `work_order.leased`, state `Leased`). The state is written `preparing` on the wire, as it
//! always was; that is the only place the step goes by another name.

mod aggregate;
mod commands;
mod events;
mod retry;
mod state;

pub use aggregate::WorkOrder;
pub use commands::{Attempts, Failure, LeaseSeconds, LeaseTerms, Submission, WorkOrderCommand};
pub use events::{Lease, ResourceNeeds, WorkOrderEvent};
pub use retry::RetryPolicy;
pub use state::WorkOrderState;
