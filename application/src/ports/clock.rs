//! Time as a port, so that backoff, leases and timeslots can be tested without waiting.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, cut to whole microseconds (the precision every store keeps).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::envelope::truncate_to_micros(Utc::now())
    }
}
