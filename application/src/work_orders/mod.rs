//! Work orders beyond their commands: the claim index every replica keeps from the log, the
//! claim (a long poll that leases the next order an executor can run), and the timers that keep
//! the queue moving by itself.

mod claim;
mod queue;
mod timers;

pub use claim::{ClaimHandler, ClaimWorkOrder, ClaimedOrder, WaitMs};
pub use queue::{fits, Candidate, ClaimFilter, WorkQueue};
pub use timers::{TimersPass, WorkOrderTimers, WORK_ORDER_TIMERS};
