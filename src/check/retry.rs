//! Retry timing: exponential backoff with jitter, or a short fixed poll
//! interval for "wait until ready" (`retry = { poll = "50ms" }`), bounded by
//! the check's deadline. Pure functions; the runner owns the only retry loop.

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
    /// Wait until ready: try again every `poll` (a fixed interval, no
    /// growth), so a service is seen within one interval of becoming ready.
    /// Excludes `initial`, `max` and `factor`.
    pub poll: Option<HumanDuration>,
}

/// Shortest poll interval a profile may ask for.
pub const MIN_POLL: Duration = Duration::from_millis(10);

impl RawRetry {
    /// The policy this table describes, or what is wrong with it (the field
    /// and the fix).
    pub fn policy(&self) -> Result<RetryPolicy, String> {
        if self.attempts == Some(0) {
            return Err(
                "retry.attempts must be at least 1 (omit it to retry until the deadline)".into(),
            );
        }
        if let Some(poll) = self.poll {
            if self.initial.is_some() || self.max.is_some() || self.factor.is_some() {
                return Err("retry.poll is a fixed interval: give either `poll` or `initial`/`max`/`factor`, not both".into());
            }
            if poll.0 < MIN_POLL {
                return Err(format!(
                    "retry.poll must be at least {}ms",
                    MIN_POLL.as_millis()
                ));
            }
            return Ok(RetryPolicy {
                max_attempts: self.attempts,
                initial: poll.0,
                max: poll.0,
                factor: 1.0,
            });
        }
        let policy = RetryPolicy {
            max_attempts: self.attempts,
            initial: self
                .initial
                .map(|d| d.0)
                .unwrap_or(Duration::from_millis(250)),
            max: self.max.map(|d| d.0).unwrap_or(Duration::from_secs(5)),
            factor: self.factor.unwrap_or(2.0),
        };
        if !(1.0..=10.0).contains(&policy.factor) {
            return Err("retry.factor must be between 1.0 and 10.0".into());
        }
        if policy.initial > policy.max {
            return Err("retry.initial must not exceed retry.max".into());
        }
        Ok(policy)
    }
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

    #[test]
    fn raw_tables_become_policies_or_say_what_to_fix() {
        let ms = |v| Some(HumanDuration(Duration::from_millis(v)));
        let raw = |attempts, initial, max, factor, poll| RawRetry {
            attempts,
            initial,
            max,
            factor,
            poll,
        };
        type Want = Result<(u64, u64, f64), &'static str>;
        let cases: [(RawRetry, Want); 7] = [
            (raw(None, None, None, None, None), Ok((250, 5000, 2.0))),
            (
                raw(None, ms(200), ms(2000), None, None),
                Ok((200, 2000, 2.0)),
            ),
            (raw(None, None, None, None, ms(50)), Ok((50, 50, 1.0))),
            (raw(Some(0), None, None, None, None), Err("at least 1")),
            (raw(None, ms(200), None, None, ms(50)), Err("either `poll`")),
            (raw(None, None, None, None, ms(1)), Err("at least 10ms")),
            (
                raw(None, ms(3000), ms(1000), None, None),
                Err("must not exceed"),
            ),
        ];
        for (table, want) in cases {
            match (table.policy(), want) {
                (Ok(p), Ok((i, m, f))) => {
                    assert_eq!(
                        (
                            p.initial.as_millis() as u64,
                            p.max.as_millis() as u64,
                            p.factor
                        ),
                        (i, m, f),
                        "{table:?}"
                    )
                }
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{table:?}: {e}"),
                (got, want) => panic!("{table:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_poll_policy_retries_at_its_interval_until_the_deadline() {
        let p = RawRetry {
            attempts: None,
            initial: None,
            max: None,
            factor: None,
            poll: Some(HumanDuration(Duration::from_millis(50))),
        }
        .policy()
        .unwrap();
        let long = Duration::from_secs(60);
        for failed in [1, 10, 1000] {
            let d = p.next_delay(failed, long, 0.999_999).unwrap();
            assert!(d <= Duration::from_millis(50), "{failed}: {d:?}");
            assert!(d >= Duration::from_millis(25), "{failed}: {d:?}");
        }
    }
}
