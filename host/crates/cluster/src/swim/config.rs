//! Timers and fan-outs of the protocol, with the formulas that scale them with N.

use std::time::Duration;

/// Defaults are memberlist's LAN profile, tightened where the extra machinery (several
/// direct attempts, active confirmation of suspects, buddy pings) makes it safe.
#[derive(Clone, Debug)]
pub struct SwimConfig {
    /// One member is probed per interval (scaled by local health).
    pub probe_interval: Duration,
    /// Time unit of the suspicion timeout (memberlist uses its probe interval, 1 s).
    pub suspicion_unit: Duration,
    /// Direct ack window; unanswered pings are retried every timeout.
    pub probe_timeout: Duration,
    /// Direct pings per probe (the first plus retries).
    pub direct_attempts: u32,
    /// Relays asked to probe indirectly once the first direct ping times out.
    pub indirect_checks: usize,
    /// Lifeguard local-health ceiling: timers stretch up to `(max + 1)`×.
    pub awareness_max: u32,
    /// Suspicion minimum = `max(suspicion_floor, suspicion_mult × max(1, log10 N) ×
    /// suspicion_unit)`: short at scale, where only `confirmations` independent suspecters
    /// bring a suspicion down to it (a false one stays near the maximum and is refuted),
    /// never below the floor in small clusters, which have no confirmations.
    pub suspicion_mult: f64,
    pub suspicion_floor: Duration,
    /// Suspicion maximum = `suspicion_max_mult × minimum`.
    pub suspicion_max_mult: u32,
    /// Independent confirmations that shrink the suspicion timeout to its minimum.
    pub confirmations: u32,
    /// Expected number of members that probe a freshly suspected member themselves.
    pub active_probers: u32,
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// Datagrams per target per gossip tick (Sidecar's `SIDECAR_GOSSIP_MESSAGES`).
    pub gossip_messages: usize,
    /// Peers a new item is pushed to at once (on a local change and on first receipt).
    pub eager_fanout: usize,
    /// Each item is sent `retransmit_mult × ceil(log10(N + 1))` times by each member
    /// (member updates always; records only with `tree_fanout` 0).
    pub retransmit_mult: u32,
    /// Children per member in a record's broadcast tree (Plumtree-style eager push: the
    /// origin's tree over the live members ranked by a hash of their names); 0 sends
    /// records like member updates instead (eager fan-out plus retransmissions).
    pub tree_fanout: usize,
    /// Members after us in that ranking that hear our lazy announcements (ids only) of
    /// the records we received: the repair path for what the tree lost.
    pub lazy_fanout: usize,
    /// Announcements wait this long to be batched into one datagram per member.
    pub announce_delay: Duration,
    /// An announced item we lack is asked for (grafted) after this wait, in case the
    /// tree is only slower than the announcement.
    pub graft_wait: Duration,
    /// Recent items are kept this long to answer grafts and recognise announcements.
    pub recent_ttl: Duration,
    /// Base anti-entropy period, scaled like memberlist beyond 32 members.
    pub push_pull_interval: Duration,
    /// How often one dead member is pinged (partition healing).
    pub reconnect_interval: Duration,
    /// How often a seed that is not a live member is synced with.
    pub rejoin_interval: Duration,
    /// Dead and departed members are remembered this long.
    pub dead_retention: Duration,
    /// Largest datagram payload (after the envelope).
    pub max_payload: usize,
    /// Most queued broadcasts; beyond it the most-sent are dropped (anti-entropy repairs).
    pub queue_limit: usize,
    /// Generations are start times in milliseconds: a claim whose generation is further
    /// than this ahead of ours (plus the time we have run) is refused, so one forged
    /// datagram cannot declare a life that outlives every real restart.
    pub max_generation_ahead: Duration,
    /// Most members in the table (dead and departed included); members beyond it are
    /// refused and counted. Also the most hosts one anti-entropy request may want.
    pub max_members: usize,
    /// New members (not updates) one sending host may introduce per second, and the
    /// burst; a join's own exchange with its seed is not limited.
    pub new_members_per_sender: u32,
}

impl Default for SwimConfig {
    fn default() -> Self {
        SwimConfig {
            // Twice memberlist's rate: the wait until somebody probes a crashed member
            // is the tail of crash detection (p99 ≈ 4.6 intervals).
            probe_interval: Duration::from_millis(500),
            suspicion_unit: Duration::from_secs(1),
            // Three direct attempts in 600 ms (a WAN round trip is 20-160 ms) and four
            // relays (a false suspicion at 10 % loss: 0.19³ × 0.34⁴ ≈ 10⁻⁴ per probe).
            probe_timeout: Duration::from_millis(200),
            direct_attempts: 3,
            indirect_checks: 4,
            awareness_max: 8,
            suspicion_mult: 0.6,
            suspicion_floor: Duration::from_millis(1500),
            suspicion_max_mult: 6,
            confirmations: 3,
            active_probers: 6,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_messages: 15,
            eager_fanout: 4,
            retransmit_mult: 4,
            tree_fanout: 8,
            lazy_fanout: 2,
            announce_delay: Duration::from_millis(100),
            graft_wait: Duration::from_millis(250),
            recent_ttl: Duration::from_secs(30),
            push_pull_interval: Duration::from_secs(20),
            reconnect_interval: Duration::from_secs(2),
            rejoin_interval: Duration::from_secs(30),
            dead_retention: Duration::from_secs(24 * 3600),
            // 1,400-byte datagrams minus the largest envelope (32 B budgeted, 29 used).
            max_payload: 1400 - 32,
            queue_limit: 4096,
            max_generation_ahead: Duration::from_secs(2 * 3600),
            // The simulator runs 10,000 members; room to spare above that.
            max_members: 16_384,
            new_members_per_sender: 64,
        }
    }
}

fn log10_at_least_1(n: usize) -> f64 {
    (n.max(1) as f64).log10().max(1.0)
}

impl SwimConfig {
    /// memberlist's retransmit limit: `mult × ceil(log10(N + 1))`.
    pub fn retransmit_limit(&self, n: usize) -> u32 {
        self.retransmit_mult * ((n as f64 + 1.0).log10().ceil() as u32).max(1)
    }

    /// (minimum, maximum) suspicion timeout for a cluster of `n`.
    pub fn suspicion_bounds(&self, n: usize) -> (Duration, Duration) {
        let min = self
            .suspicion_unit
            .mul_f64(self.suspicion_mult * log10_at_least_1(n))
            .max(self.suspicion_floor);
        (min, min * self.suspicion_max_mult)
    }

    /// memberlist's push-pull scaling: ×`ceil(log2 N − log2 32) + 1` beyond 32 members.
    pub fn push_pull_for(&self, n: usize) -> Duration {
        if n <= 32 {
            return self.push_pull_interval;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.push_pull_interval.mul_f64(mult)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_scale_with_cluster_size() {
        let c = SwimConfig::default();
        assert_eq!(c.retransmit_limit(100), 12);
        assert_eq!(c.retransmit_limit(10_000), 20);
        assert_eq!(
            c.suspicion_bounds(5).0,
            Duration::from_millis(1500),
            "floor"
        );
        assert_eq!(
            c.suspicion_bounds(100).0,
            Duration::from_millis(1500),
            "floor"
        );
        assert_eq!(c.suspicion_bounds(1000).0, Duration::from_millis(1800));
        assert_eq!(c.suspicion_bounds(10_000).1, Duration::from_millis(14_400));
        assert_eq!(c.push_pull_for(10), Duration::from_secs(20));
        assert_eq!(c.push_pull_for(100), Duration::from_secs(60));
    }
}
