//! Work orders beyond their commands: the timers that keep the queue moving by itself.

mod timers;

pub use timers::{TimersPass, WorkOrderTimers, WORK_ORDER_TIMERS};
