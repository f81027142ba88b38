//! The simulated network: latency with jitter, uniform and one-way loss, partitions.

use crate::swim::Micros;
use crate::swim::rng::Rng;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Network {
    /// One-way latency, uniform in `[min, max]` microseconds.
    pub latency_min: Micros,
    pub latency_max: Micros,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Extra loss on directed links `(from, to)`.
    pub one_way: HashMap<(u32, u32), f64>,
    /// Partition group per node; nodes in different groups cannot talk. Empty: none.
    pub groups: Vec<u8>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency_min: 200,
            latency_max: 1_000,
            loss: 0.0,
            one_way: HashMap::new(),
            groups: Vec::new(),
        }
    }
}

impl Network {
    pub fn connected(&self, a: u32, b: u32) -> bool {
        self.groups.is_empty() || self.groups.get(a as usize) == self.groups.get(b as usize)
    }

    /// Delay of one datagram, or `None` if it is lost.
    pub fn datagram(&self, rng: &mut Rng, from: u32, to: u32) -> Option<Micros> {
        if !self.connected(from, to) {
            return None;
        }
        let extra = self.one_way.get(&(from, to)).copied().unwrap_or(0.0);
        if rng.chance(self.loss) || (extra > 0.0 && rng.chance(extra)) {
            return None;
        }
        Some(self.delay(rng))
    }

    /// One-way delay of a stream message (reliable while connected).
    pub fn delay(&self, rng: &mut Rng) -> Micros {
        let span = self.latency_max.saturating_sub(self.latency_min);
        self.latency_min + rng.below(span as usize + 1) as u64
    }

    pub fn heal(&mut self) {
        self.groups.clear();
        self.one_way.clear();
        self.loss = 0.0;
    }
}
