//! Per-sender rate limit on introducing members new to us: a token bucket per sending
//! host on the core's clock. Updates about members we already hold are never limited;
//! only growth of the table is, so one host holding the key cannot flood every table
//! with invented members faster than `rate` per second (the table cap bounds the total).

use super::Micros;
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Clone, Debug)]
pub(super) struct Intros<A> {
    /// Sending host -> (tokens, when they were counted).
    buckets: HashMap<A, (f64, Micros)>,
    /// New members per second per sender, and the burst.
    rate: f64,
    /// Most buckets kept (spoofed UDP sources cannot grow the map without bound).
    max_buckets: usize,
}

impl<A: Hash + Eq + Clone> Intros<A> {
    pub(super) fn new(rate: u32, max_buckets: usize) -> Self {
        Intros {
            buckets: HashMap::new(),
            rate: f64::from(rate),
            max_buckets: max_buckets.max(1),
        }
    }

    fn refill(&self, (tokens, at): (f64, Micros), now: Micros) -> f64 {
        let elapsed = now.saturating_sub(at) as f64 / 1e6;
        (tokens + elapsed * self.rate).min(self.rate)
    }

    /// Takes one token from `from`'s bucket; false when it is empty.
    pub(super) fn allow(&mut self, from: &A, now: Micros) -> bool {
        if let Some(b) = self.buckets.get(from).copied() {
            let tokens = self.refill(b, now);
            let ok = tokens >= 1.0;
            self.buckets
                .insert(from.clone(), (if ok { tokens - 1.0 } else { tokens }, now));
            return ok;
        }
        if self.rate < 1.0 {
            return false;
        }
        if self.buckets.len() >= self.max_buckets {
            self.forget_full(now);
            if self.buckets.len() >= self.max_buckets {
                return false;
            }
        }
        self.buckets.insert(from.clone(), (self.rate - 1.0, now));
        true
    }

    /// Drops buckets that have refilled: they behave like absent ones.
    pub(super) fn forget_full(&mut self, now: Micros) {
        let rate = self.rate;
        self.buckets.retain(|_, &mut (tokens, at)| {
            tokens + now.saturating_sub(at) as f64 / 1e6 * rate < rate
        });
    }

    #[cfg(test)]
    pub(super) fn senders(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_a_burst_then_the_rate() {
        let mut i = Intros::new(4, 100);
        let granted = (0..10).filter(|_| i.allow(&1u32, 0)).count();
        assert_eq!(granted, 4, "the burst");
        assert!(i.allow(&2u32, 0), "another sender has its own bucket");
        assert!(!i.allow(&1u32, 200_000), "0.8 tokens after 200 ms");
        assert!(i.allow(&1u32, 250_000), "one token after 250 ms");
        assert_eq!((0..10).filter(|_| i.allow(&1u32, 10_000_000)).count(), 4);
    }

    #[test]
    fn buckets_are_bounded_and_refilled_ones_forgotten() {
        let mut i = Intros::new(2, 3);
        for a in 0..3u32 {
            assert!(i.allow(&a, 0));
        }
        assert!(!i.allow(&9u32, 0), "no room for a fourth sender");
        assert!(
            i.allow(&9u32, 1_000_000),
            "full buckets are forgotten to make room"
        );
        i.forget_full(10_000_000);
        assert_eq!(i.senders(), 0);
    }
}
