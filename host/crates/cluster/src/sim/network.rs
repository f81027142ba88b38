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
    /// Share of directed links (picked by a hash of `(from, to)`, so `a -> b` and
    /// `b -> a` are independent) that lose an extra `lossy_link_loss` of their datagrams:
    /// one-way loss at any cluster size without a table of links.
    pub lossy_links: f64,
    pub lossy_link_loss: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency_min: 200,
            latency_max: 1_000,
            loss: 0.0,
            one_way: HashMap::new(),
            groups: Vec::new(),
            lossy_links: 0.0,
            lossy_link_loss: 0.0,
        }
    }
}

/// The simulator's network profiles (`docs/benchmarks.md` reports every cluster figure
/// for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// One data centre: 0.2-1 ms one way, no loss.
    Lan,
    /// Regions apart: 10-80 ms one way, 1 % loss on every link, and 5 % of directed links
    /// losing another 20 % one way.
    Wan,
}

impl Profile {
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "lan" => Some(Profile::Lan),
            "wan" => Some(Profile::Wan),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
        }
    }

    pub fn network(self) -> Network {
        match self {
            Profile::Lan => Network::default(),
            Profile::Wan => Network {
                latency_min: 10_000,
                latency_max: 80_000,
                loss: 0.01,
                lossy_links: 0.05,
                lossy_link_loss: 0.2,
                ..Network::default()
            },
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
        let mut extra = self.one_way.get(&(from, to)).copied().unwrap_or(0.0);
        if self.lossy_links > 0.0 && link_hash(from, to) < self.lossy_links {
            extra = 1.0 - (1.0 - extra) * (1.0 - self.lossy_link_loss);
        }
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
        self.lossy_links = 0.0;
    }
}

/// A directed link's fixed place in `[0, 1)`.
fn link_hash(from: u32, to: u32) -> f64 {
    let h = xxhash_rust::xxh3::xxh3_64(&(u64::from(from) << 32 | u64::from(to)).to_le_bytes());
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wan_profile_loses_some_links_one_way() {
        let net = Profile::Wan.network();
        let mut rng = Rng::new(1);
        let lossy: Vec<(u32, u32)> = (0..200u32)
            .flat_map(|a| (0..200u32).map(move |b| (a, b)))
            .filter(|&(a, b)| a != b && link_hash(a, b) < net.lossy_links)
            .collect();
        let share = lossy.len() as f64 / (200.0 * 199.0);
        assert!((0.04..0.06).contains(&share), "{share}");
        let one_way = lossy
            .iter()
            .filter(|&&(a, b)| link_hash(b, a) >= net.lossy_links)
            .count();
        assert!(one_way * 10 > lossy.len() * 9, "mostly one way");
        let (a, b) = lossy[0];
        let lost = |from, to, rng: &mut Rng| {
            (0..10_000)
                .filter(|_| net.datagram(rng, from, to).is_none())
                .count()
        };
        let there = lost(a, b, &mut rng);
        assert!((1_700..2_300).contains(&there), "{there}");
        let d = net.datagram(&mut rng, 0, 1).unwrap_or(10_000);
        assert!((10_000..=80_000).contains(&d));
    }
}
