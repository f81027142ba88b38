//! Lifeguard's local health: a saturating score raised by signs that *we* are the slow
//! one (missed nacks, failed probes, having to refute) and lowered by successful probes.
//! Probe timers stretch by `score + 1`, so an overloaded member slows down instead of
//! accusing healthy peers.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Awareness {
    score: u32,
    max: u32,
}

impl Awareness {
    pub fn new(max: u32) -> Self {
        Awareness { score: 0, max }
    }

    pub fn apply(&mut self, delta: i32) {
        self.score = (self.score as i64 + i64::from(delta)).clamp(0, i64::from(self.max)) as u32;
    }

    pub fn score(&self) -> u32 {
        self.score
    }

    pub fn scale(&self, d: Duration) -> Duration {
        d * (self.score + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_saturates_and_scales_timers() {
        let mut a = Awareness::new(8);
        a.apply(-1);
        assert_eq!(a.score(), 0);
        a.apply(20);
        assert_eq!(a.score(), 8);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(9));
    }
}
