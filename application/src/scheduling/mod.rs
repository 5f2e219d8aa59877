//! The scheduler: places pending lablet instances on workers as their timeslots come near.

mod fleet_view;
mod scheduler;

pub(crate) use scheduler::{after, before};
pub use scheduler::{Scheduler, SchedulerPass, SchedulerSettings, SCHEDULER};
