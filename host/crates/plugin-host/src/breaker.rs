//! Circuit breaker: a plugin that keeps crashing (trap, timeout) is disabled for a
//! while instead of burning a fresh instance and a full deadline on every call.
//!
//! Closed until `threshold` consecutive crashes; then open (calls fail fast) for a
//! backoff that doubles on every re-trip up to `max_backoff`; after it, one trial call
//! is let through (half-open): success closes the breaker and resets the backoff,
//! another crash opens it again. Pure logic: the caller passes the time in.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub threshold: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    consecutive: u32,
    backoff: Duration,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub crashes: u32,
    pub retry_in: Duration,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            consecutive: 0,
            backoff: policy.base_backoff,
            open_until: None,
            trial_in_flight: false,
        }
    }

    /// May a call start now?
    pub fn admit(&mut self, now: Instant) -> Result<(), Refused> {
        match self.open_until {
            None => Ok(()),
            Some(until) if now < until => Err(Refused {
                crashes: self.consecutive,
                retry_in: until - now,
            }),
            Some(_) if self.trial_in_flight => Err(Refused {
                crashes: self.consecutive,
                retry_in: Duration::ZERO,
            }),
            Some(_) => {
                self.trial_in_flight = true;
                Ok(())
            }
        }
    }

    /// The admitted call ended without an outcome (it never reached the plugin).
    pub fn abandon(&mut self) {
        self.trial_in_flight = false;
    }

    /// The call finished without crashing (a plugin-reported error counts as success).
    pub fn success(&mut self) {
        *self = Breaker::new(self.policy);
    }

    /// The call crashed. Returns true when this trips the breaker.
    pub fn crash(&mut self, now: Instant) -> bool {
        self.consecutive += 1;
        let half_open = self.open_until.is_some();
        self.trial_in_flight = false;
        if half_open {
            self.backoff = (self.backoff * 2).min(self.policy.max_backoff);
            self.open_until = Some(now + self.backoff);
            return true;
        }
        if self.consecutive >= self.policy.threshold {
            self.open_until = Some(now + self.backoff);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        threshold: 3,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(4),
    };

    #[test]
    fn trips_after_threshold_and_recovers_after_a_good_trial() {
        let t0 = Instant::now();
        let mut b = Breaker::new(POLICY);
        assert!(!b.crash(t0));
        b.success();
        assert!(!b.crash(t0));
        assert!(!b.crash(t0));
        assert!(b.crash(t0), "third consecutive crash trips");
        assert_eq!(
            b.admit(t0 + Duration::from_millis(500))
                .map_err(|r| r.crashes),
            Err(3)
        );
        assert!(
            b.admit(t0 + Duration::from_secs(1)).is_ok(),
            "trial after the backoff"
        );
        assert!(
            b.admit(t0 + Duration::from_secs(1)).is_err(),
            "only one trial at a time"
        );
        b.success();
        assert!(b.admit(t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn an_abandoned_trial_lets_the_next_one_through() {
        let t0 = Instant::now();
        let mut b = Breaker::new(POLICY);
        for _ in 0..3 {
            b.crash(t0);
        }
        let later = t0 + Duration::from_secs(1);
        assert!(b.admit(later).is_ok());
        b.abandon();
        assert!(
            b.admit(later).is_ok(),
            "not stuck waiting for a trial that never ran"
        );
    }

    #[test]
    fn failed_trials_double_the_backoff_up_to_the_max() {
        let t0 = Instant::now();
        let mut b = Breaker::new(POLICY);
        for _ in 0..3 {
            b.crash(t0);
        }
        let mut now = t0 + Duration::from_secs(1);
        for expected in [2, 4, 4] {
            assert!(b.admit(now).is_ok());
            assert!(b.crash(now));
            let refused = b.admit(now).expect_err("open again");
            assert_eq!(refused.retry_in, Duration::from_secs(expected));
            now += Duration::from_secs(expected);
        }
    }
}
