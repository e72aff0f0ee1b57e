//! Retry timing: exponential backoff with jitter, bounded by the check's
//! deadline. Pure functions; the runner owns the only retry loop.

use std::time::Duration;

use serde::Deserialize;

use super::model::HumanDuration;

/// How a check is retried after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// `None`: keep trying until the check's deadline.
    pub max_attempts: Option<u32>,
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub const ONCE: RetryPolicy = RetryPolicy {
        max_attempts: Some(1),
        initial: Duration::from_millis(250),
        max: Duration::from_secs(5),
        factor: 2.0,
    };

    /// The nominal backoff after `failed` attempts (1-based), before jitter.
    pub fn nominal_backoff(&self, failed: u32) -> Duration {
        let exp = self
            .factor
            .max(1.0)
            .powi(failed.saturating_sub(1).min(64) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The delay before the next attempt, or `None` when the check must stop
    /// now. `jitter` in [0, 1) spreads the delay over [nominal/2, nominal]
    /// ("equal jitter"), so parallel checks do not retry in lock step.
    /// The delay never runs past the deadline: with less than the delay left,
    /// the last attempt is made just before the deadline (at most once).
    pub fn next_delay(&self, failed: u32, remaining: Duration, jitter: f64) -> Option<Duration> {
        if let Some(max) = self.max_attempts {
            if failed >= max {
                return None;
            }
        }
        let nominal = self.nominal_backoff(failed);
        let jitter = jitter.clamp(0.0, 0.999_999);
        let delay = nominal.mul_f64(0.5 + jitter / 2.0);
        // Leave time for an attempt after sleeping.
        let floor = Duration::from_millis(50);
        if remaining <= floor {
            return None;
        }
        if delay + floor > remaining {
            return Some(remaining - floor);
        }
        Some(delay)
    }
}

/// Raw retry table of a check or of `[defaults]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Stop after this many attempts; absent: retry until the deadline.
    pub attempts: Option<u32>,
    /// First backoff (default 250ms).
    pub initial: Option<HumanDuration>,
    /// Largest backoff (default 5s).
    pub max: Option<HumanDuration>,
    /// Growth factor (default 2.0).
    pub factor: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: Option<u32>) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        }
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let p = policy(None);
        let ms = |n| p.nominal_backoff(n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(40)],
            [100, 200, 400, 800, 1000, 1000]
        );
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let p = policy(None);
        let long = Duration::from_secs(60);
        assert_eq!(p.next_delay(1, long, 0.0), Some(Duration::from_millis(50)));
        let hi = p.next_delay(1, long, 0.999_999).unwrap();
        assert!(hi <= Duration::from_millis(100) && hi > Duration::from_millis(99));
    }

    #[test]
    fn attempts_limit_stops_retrying() {
        let p = policy(Some(3));
        let long = Duration::from_secs(60);
        assert!(p.next_delay(2, long, 0.5).is_some());
        assert_eq!(p.next_delay(3, long, 0.5), None);
        assert_eq!(RetryPolicy::ONCE.next_delay(1, long, 0.5), None);
    }

    #[test]
    fn deadline_bounds_the_delay() {
        let p = policy(None);
        assert_eq!(p.next_delay(5, Duration::from_millis(30), 0.5), None);
        assert_eq!(
            p.next_delay(5, Duration::from_millis(300), 0.9),
            Some(Duration::from_millis(250))
        );
    }
}
