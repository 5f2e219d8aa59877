//! A circuit breaker per worker: after a run of failures the worker is isolated for a while, so
//! a dead server costs one fast failure per call instead of a timeout per call. When the while
//! has passed, one trial call goes through; its success closes the breaker, its failure opens it
//! again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed calls that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it lets a trial through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        CircuitBreaker {
            settings,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a call may go out now; `Err(wait)` while the breaker is open (or its one trial
    /// is still out).
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state();
        match state.open_until {
            None => Ok(()),
            Some(until) if now < until => Err(until - now),
            Some(_) if state.trial_in_flight => Err(self.settings.open_for),
            Some(_) => {
                state.trial_in_flight = true;
                Ok(())
            }
        }
    }

    /// The server answered: the breaker closes.
    pub fn succeeded(&self) {
        *self.state() = State::default();
    }

    /// The call failed for a reason that is the server's (unreachable, timeout, 5xx).
    pub fn failed(&self, now: Instant) {
        let mut state = self.state();
        state.consecutive_failures += 1;
        if state.trial_in_flight || state.consecutive_failures >= self.settings.failure_threshold {
            state.open_until = Some(now + self.settings.open_for);
            state.trial_in_flight = false;
        }
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.state().open_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings {
            failure_threshold: 2,
            open_for: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_until_the_trial() {
        let breaker = breaker();
        let t0 = Instant::now();
        breaker.failed(t0);
        assert_eq!(breaker.admit(t0), Ok(()), "one failure is below the threshold");
        breaker.failed(t0);
        assert_eq!(breaker.admit(t0 + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        // After the while, exactly one trial goes through.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(breaker.admit(later), Ok(()));
        assert!(breaker.admit(later).is_err(), "a second call waits for the trial");
        breaker.failed(later);
        assert!(
            breaker.is_open(later + Duration::from_secs(9)),
            "a failed trial opens it again"
        );
        let much_later = later + Duration::from_secs(11);
        assert_eq!(breaker.admit(much_later), Ok(()));
        breaker.succeeded();
        assert_eq!(breaker.admit(much_later), Ok(()));
        assert_eq!(breaker.admit(much_later), Ok(()), "closed: every call goes out");
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = breaker();
        let t0 = Instant::now();
        breaker.failed(t0);
        breaker.succeeded();
        breaker.failed(t0);
        assert_eq!(breaker.admit(t0), Ok(()));
    }
}
