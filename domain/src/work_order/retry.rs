//! Exponential backoff with jitter for retryable work order failures.

use chrono::Duration;

/// How long a failed attempt waits before the order is offered again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt, before jitter.
    pub base_delay: Duration,
    /// The longest wait, before jitter.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::seconds(5),
            max_delay: Duration::minutes(15),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `base × 2^(attempt-1)`, capped,
    /// then scaled into `[½, 1]` of itself by `jitter ∈ [0, 1]` ("equal jitter"), so that orders
    /// failing together do not come back together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base_ms = self.base_delay.num_milliseconds().max(0) as f64;
        let capped = (base_ms * 2f64.powi(exponent as i32)).min(self.max_delay.num_milliseconds() as f64);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Duration::milliseconds((capped / 2.0 + capped / 2.0 * jitter) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_attempt_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, 1.0), Duration::seconds(5));
        assert_eq!(policy.delay(2, 1.0), Duration::seconds(10));
        assert_eq!(policy.delay(3, 1.0), Duration::seconds(20));
        assert_eq!(policy.delay(40, 1.0), Duration::minutes(15));
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_and_full() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(2, 0.0), Duration::seconds(5));
        assert_eq!(policy.delay(2, 0.5), Duration::milliseconds(7500));
        assert_eq!(policy.delay(2, 7.0), Duration::seconds(10));
        assert_eq!(policy.delay(2, f64::NAN), Duration::seconds(5));
    }
}
