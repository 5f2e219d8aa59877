//! Time as a port: what time it is, and waiting until a time. Jobs, timers, backoff, leases and
//! timeslots read it, so tests drive them with a [`ManualClock`] instead of sleeping.
//!
//! This is the only module that may read the wall clock (`Utc::now()`); clippy's
//! `disallowed_methods` refuses it everywhere else.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// Now, cut to whole microseconds (the precision every store keeps).
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `deadline` (at once if it has).
    async fn sleep_until(&self, deadline: DateTime<Utc>);

    /// Resolves once `duration` has passed on this clock.
    async fn sleep(&self, duration: Duration) {
        let deadline = self.now() + chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX);
        self.sleep_until(deadline).await;
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reader of the wall clock
    fn now(&self) -> DateTime<Utc> {
        crate::envelope::truncate_to_micros(Utc::now())
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        if let Ok(wait) = (deadline - self.now()).to_std() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A clock that moves only when told to, for tests of time: every sleeper whose deadline the
/// clock passes wakes up.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: watch::Sender::new(crate::envelope::truncate_to_micros(start)),
        }
    }

    /// Moves the clock forward by `by`, waking every sleeper it passes.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
        self.now.send_modify(|now| *now += by);
    }

    /// Sets the clock to `to` (which may be earlier: a clock stepped back).
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_replace(crate::envelope::truncate_to_micros(to));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`, which outlives this borrow.
        let _ = now.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-01-01T10:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_sleeper_wakes_when_the_manual_clock_passes_its_deadline_and_not_before() {
        let clock = Arc::new(ManualClock::starting_at(at(0)));
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(35 * 60)).await }
        });
        // Let the sleeper read the clock before it moves.
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(34 * 60));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a minute early");
        clock.advance(Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke at its deadline")
            .unwrap();
        assert_eq!(clock.now(), at(35));
    }

    #[tokio::test]
    async fn a_deadline_already_passed_does_not_wait() {
        let clock = ManualClock::starting_at(at(10));
        tokio::time::timeout(Duration::from_secs(5), clock.sleep_until(at(5)))
            .await
            .expect("no wait");
    }
}
