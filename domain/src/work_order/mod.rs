//! WorkOrder: one unit of work pulled by an executor, stream `work_order-<uuid>`.
//!
//! Executors lease pending orders, start them, renew the lease while they work, and report the
//! outcome, each call naming the lease's fencing token (the attempt it was taken for): a call
//! with an older token is refused, so a slow executor whose lease was taken over cannot
//! overwrite its successor's work. A retryable failure waits
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

pub use aggregate::{unique_order_id, WorkOrder, LEASE_EXPIRED};
pub use commands::{Attempts, Failure, LeaseSeconds, LeaseTerms, LeaseToken, Submission, WorkOrderCommand};
pub use events::{Lease, ResourceNeeds, WorkOrderEvent};
pub use retry::RetryPolicy;
pub use state::WorkOrderState;
