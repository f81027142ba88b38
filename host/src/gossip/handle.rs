//! What the rest of the daemon sees of the gossip transport: the member list (a `watch`),
//! counters for `/metrics`, and graceful leave.

use sidecar_cluster::{MemberList, State};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};

/// Transport counters (monotonic), read by `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub streams_in: AtomicU64,
    pub streams_out: AtomicU64,
    pub stream_bytes_in: AtomicU64,
    pub stream_bytes_out: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_foreign_cluster: AtomicU64,
    pub dropped_unencrypted: AtomicU64,
    pub dropped_unexpected_encryption: AtomicU64,
    pub dropped_unauthenticated: AtomicU64,
    pub dropped_decode: AtomicU64,
    pub dropped_send: AtomicU64,
    pub stream_failures: AtomicU64,
    pub probes: AtomicU64,
    pub suspicions: AtomicU64,
    pub deaths_declared: AtomicU64,
    pub refutations: AtomicU64,
    pub queue_dropped: AtomicU64,
}

impl ClusterCounters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// `(name, value)` pairs, Prometheus-style names without the prefix.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("gossip_datagrams_in_total", g(&self.datagrams_in)),
            ("gossip_datagrams_out_total", g(&self.datagrams_out)),
            ("gossip_bytes_in_total", g(&self.bytes_in)),
            ("gossip_bytes_out_total", g(&self.bytes_out)),
            ("gossip_streams_in_total", g(&self.streams_in)),
            ("gossip_streams_out_total", g(&self.streams_out)),
            ("gossip_stream_bytes_in_total", g(&self.stream_bytes_in)),
            ("gossip_stream_bytes_out_total", g(&self.stream_bytes_out)),
            ("gossip_dropped_malformed_total", g(&self.dropped_malformed)),
            (
                "gossip_dropped_foreign_cluster_total",
                g(&self.dropped_foreign_cluster),
            ),
            (
                "gossip_dropped_unencrypted_total",
                g(&self.dropped_unencrypted),
            ),
            (
                "gossip_dropped_unexpected_encryption_total",
                g(&self.dropped_unexpected_encryption),
            ),
            (
                "gossip_dropped_unauthenticated_total",
                g(&self.dropped_unauthenticated),
            ),
            ("gossip_dropped_decode_total", g(&self.dropped_decode)),
            ("gossip_dropped_send_total", g(&self.dropped_send)),
            ("gossip_stream_failures_total", g(&self.stream_failures)),
            ("swim_probes_total", g(&self.probes)),
            ("swim_suspicions_total", g(&self.suspicions)),
            ("swim_deaths_declared_total", g(&self.deaths_declared)),
            ("swim_refutations_total", g(&self.refutations)),
            ("gossip_queue_dropped_total", g(&self.queue_dropped)),
        ]
    }
}

pub(crate) enum Command {
    Leave(oneshot::Sender<()>),
}

/// A running cluster member. Cheap to clone.
#[derive(Clone)]
pub struct ClusterHandle {
    pub(crate) members: watch::Receiver<Arc<MemberList>>,
    pub counters: Arc<ClusterCounters>,
    pub(crate) commands: mpsc::Sender<Command>,
}

impl ClusterHandle {
    /// The current member list.
    pub fn members(&self) -> Arc<MemberList> {
        self.members.borrow().clone()
    }

    /// Wakes whenever the member list changes.
    pub fn watch(&self) -> watch::Receiver<Arc<MemberList>> {
        self.members.clone()
    }

    /// Names of alive and suspect members (the API's `ClusterMembers`).
    pub fn live_member_names(&self) -> Vec<String> {
        self.members().live().map(|m| m.name.clone()).collect()
    }

    /// Prometheus text lines: transport and protocol counters, members by state.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        for (name, value) in self.counters.snapshot() {
            let _ = writeln!(out, "# TYPE sidecar_{name} counter\nsidecar_{name} {value}");
        }
        let members = self.members();
        let _ = writeln!(out, "# TYPE sidecar_cluster_members gauge");
        for state in [State::Alive, State::Suspect, State::Dead, State::Left] {
            let _ = writeln!(
                out,
                "sidecar_cluster_members{{state=\"{}\"}} {}",
                state.as_str(),
                members.count(state)
            );
        }
    }

    /// Announces our departure and returns once it is on the wire (at most ~1 s).
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rx).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_cluster::MemberInfo;
    use std::net::SocketAddr;

    #[test]
    fn metrics_and_live_members_come_from_the_published_list() {
        let list = MemberList {
            cluster_name: "default".into(),
            members: [State::Alive, State::Suspect, State::Dead]
                .iter()
                .enumerate()
                .map(|(i, state)| MemberInfo {
                    name: format!("n{i}"),
                    address: SocketAddr::from(([127, 0, 0, 1], 7946)),
                    state: *state,
                    incarnation: 0,
                    generation: 1,
                    local: i == 0,
                })
                .collect(),
        };
        let (_tx, rx) = watch::channel(Arc::new(list));
        let (cmd, _cmd_rx) = mpsc::channel(1);
        let h = ClusterHandle {
            members: rx,
            counters: Arc::default(),
            commands: cmd,
        };
        ClusterCounters::add(&h.counters.dropped_foreign_cluster, 2);
        assert_eq!(h.live_member_names(), vec!["n0", "n1"]);
        let mut out = String::new();
        h.render_prometheus(&mut out);
        assert!(out.contains("sidecar_gossip_dropped_foreign_cluster_total 2\n"));
        assert!(out.contains("sidecar_cluster_members{state=\"dead\"} 1\n"));
    }
}
