//! Lifeguard's suspicion timer: starts at the maximum and shrinks logarithmically with
//! each independent confirmation, down to the minimum after `k` of them:
//! `timeout = max − (max − min) · ln(c + 1) / ln(k + 1)`.

use super::Micros;

#[derive(Clone, Debug)]
pub struct Suspicion<K> {
    start: Micros,
    min: Micros,
    max: Micros,
    k: u32,
    /// Distinct suspecters; the first one started it and does not count.
    confirmers: Vec<K>,
    pub deadline: Micros,
}

impl<K: PartialEq> Suspicion<K> {
    pub fn new(from: K, start: Micros, min: Micros, max: Micros, k: u32) -> Self {
        let mut s = Suspicion {
            start,
            min,
            max,
            k,
            confirmers: vec![from],
            deadline: 0,
        };
        s.deadline = s.start + s.timeout();
        s
    }

    fn timeout(&self) -> Micros {
        let c = self.confirmers.len().saturating_sub(1) as f64;
        if self.k == 0 {
            return self.min;
        }
        let frac = (c + 1.0).ln() / (f64::from(self.k) + 1.0).ln();
        let t = self.max as f64 - (self.max - self.min) as f64 * frac;
        (t.max(self.min as f64)) as Micros
    }

    /// Adds an independent confirmation; true if it was new.
    pub fn confirm(&mut self, from: K) -> bool {
        if self.confirmers.len() > self.k as usize || self.confirmers.contains(&from) {
            return false;
        }
        self.confirmers.push(from);
        self.deadline = self.start + self.timeout();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_shrink_the_timeout_to_the_minimum() {
        let mut s = Suspicion::new(1u32, 0, 3_000_000, 18_000_000, 3);
        assert_eq!(s.deadline, 18_000_000);
        assert!(s.confirm(2));
        assert!(!s.confirm(2), "the same member counts once");
        let one = s.deadline;
        assert!(one < 18_000_000 && one > 3_000_000);
        s.confirm(3);
        s.confirm(4);
        assert_eq!(s.deadline, 3_000_000);
        assert!(!s.confirm(5), "bounded");
        assert_eq!(Suspicion::new(1u32, 10, 5, 50, 0).deadline, 15);
    }
}
