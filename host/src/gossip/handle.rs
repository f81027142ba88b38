//! What the rest of the daemon sees of the gossip transport: the member list (a `watch`),
//! its families for `/metrics`, and graceful leave.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sidecar_cluster::{MemberList, State};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Transport and protocol counters (monotonic). The transport ones are incremented per
/// datagram/stream; the SWIM ones are copied from the core's statistics every second.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub datagrams_in: Counter,
    pub datagrams_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub streams_in: Counter,
    pub streams_out: Counter,
    pub stream_bytes_in: Counter,
    pub stream_bytes_out: Counter,
    pub dropped_malformed: Counter,
    pub dropped_foreign_cluster: Counter,
    pub dropped_unencrypted: Counter,
    pub dropped_unexpected_encryption: Counter,
    pub dropped_unauthenticated: Counter,
    pub dropped_too_large: Counter,
    pub dropped_connection_limit: Counter,
    pub dropped_decode: Counter,
    pub dropped_send: Counter,
    pub stream_failures: Counter,
    pub probes: Counter,
    pub suspicions: Counter,
    pub deaths_declared: Counter,
    pub refutations: Counter,
    pub refused_generations: Counter,
    pub refused_members: Counter,
    pub refused_wants: Counter,
    pub queue_dropped: Counter,
    pub grafts: Counter,
}

impl ClusterCounters {
    /// Sets a counter to a total kept elsewhere (the SWIM core's statistics).
    pub fn set(c: &Counter, total: u64) {
        c.inner().store(total, std::sync::atomic::Ordering::Relaxed);
    }

    /// `(name, help, counter)`: names without `_total`, which the encoder appends.
    fn families(&self) -> [(&'static str, &'static str, &Counter); 27] {
        [
            (
                "sidecar_gossip_datagrams_in",
                "Gossip datagrams received",
                &self.datagrams_in,
            ),
            (
                "sidecar_gossip_datagrams_out",
                "Gossip datagrams sent",
                &self.datagrams_out,
            ),
            (
                "sidecar_gossip_bytes_in",
                "Bytes of gossip datagrams received",
                &self.bytes_in,
            ),
            (
                "sidecar_gossip_bytes_out",
                "Bytes of gossip datagrams sent",
                &self.bytes_out,
            ),
            (
                "sidecar_gossip_streams_in",
                "Gossip TCP streams accepted",
                &self.streams_in,
            ),
            (
                "sidecar_gossip_streams_out",
                "Gossip TCP streams opened",
                &self.streams_out,
            ),
            (
                "sidecar_gossip_stream_bytes_in",
                "Bytes received on gossip streams",
                &self.stream_bytes_in,
            ),
            (
                "sidecar_gossip_stream_bytes_out",
                "Bytes sent on gossip streams",
                &self.stream_bytes_out,
            ),
            (
                "sidecar_gossip_dropped_malformed",
                "Gossip input dropped: malformed frame",
                &self.dropped_malformed,
            ),
            (
                "sidecar_gossip_dropped_foreign_cluster",
                "Gossip input dropped: another cluster's name",
                &self.dropped_foreign_cluster,
            ),
            (
                "sidecar_gossip_dropped_unencrypted",
                "Gossip input dropped: unencrypted while a key is set",
                &self.dropped_unencrypted,
            ),
            (
                "sidecar_gossip_dropped_unexpected_encryption",
                "Gossip input dropped: encrypted while no key is set",
                &self.dropped_unexpected_encryption,
            ),
            (
                "sidecar_gossip_dropped_unauthenticated",
                "Gossip input dropped: no key of the keyring decrypts it",
                &self.dropped_unauthenticated,
            ),
            (
                "sidecar_gossip_dropped_too_large",
                "Gossip streams dropped: body longer than SIDECAR_GOSSIP_MAX_STREAM",
                &self.dropped_too_large,
            ),
            (
                "sidecar_gossip_dropped_connection_limit",
                "Gossip TCP connections closed at once: SIDECAR_GOSSIP_MAX_CONNECTIONS reached",
                &self.dropped_connection_limit,
            ),
            (
                "sidecar_gossip_dropped_decode",
                "Gossip input dropped: payload does not decode",
                &self.dropped_decode,
            ),
            (
                "sidecar_gossip_dropped_send",
                "Gossip datagrams that could not be sent",
                &self.dropped_send,
            ),
            (
                "sidecar_gossip_stream_failures",
                "Gossip streams that failed",
                &self.stream_failures,
            ),
            ("sidecar_swim_probes", "SWIM probes sent", &self.probes),
            (
                "sidecar_swim_suspicions",
                "Members this node suspected",
                &self.suspicions,
            ),
            (
                "sidecar_swim_deaths_declared",
                "Members this node declared dead",
                &self.deaths_declared,
            ),
            (
                "sidecar_swim_refutations",
                "Suspicions of this node it refuted",
                &self.refutations,
            ),
            (
                "sidecar_swim_refused_generations",
                "Member claims refused for a generation too far in the future",
                &self.refused_generations,
            ),
            (
                "sidecar_swim_refused_members",
                "New members refused: the member table is full, or their sender introduced too many new members lately",
                &self.refused_members,
            ),
            (
                "sidecar_gossip_grafts",
                "Records asked for after a lazy announcement because their broadcast tree did not bring them",
                &self.grafts,
            ),
            (
                "sidecar_swim_refused_wants",
                "Anti-entropy requests refused for wanting more hosts than SIDECAR_GOSSIP_MAX_MEMBERS",
                &self.refused_wants,
            ),
            (
                "sidecar_gossip_queue_dropped",
                "Broadcasts dropped from the full gossip queue",
                &self.queue_dropped,
            ),
        ]
    }
}

/// `sidecar_members{state}`, read from the published member list at scrape time.
struct MembersCollector(watch::Receiver<Arc<MemberList>>);

impl std::fmt::Debug for MembersCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MembersCollector")
    }
}

impl Collector for MembersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let members = self.0.borrow().clone();
        let mut family = encoder.encode_descriptor(
            "sidecar_members",
            "Cluster members by state.",
            None,
            MetricType::Gauge,
        )?;
        for state in [State::Alive, State::Suspect, State::Dead, State::Left] {
            let labels = [("state", state.as_str())];
            let n = i64::try_from(members.count(state)).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        let joined = encoder.encode_descriptor(
            "sidecar_gossip_joined",
            "1 once another member is alive (or there are no seeds to join), else 0.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(members.joined)).encode(joined)?;
        Ok(())
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
    /// The start-up join's outcome, once known.
    pub(crate) joined: watch::Receiver<Option<Result<(), super::transport::JoinError>>>,
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

    /// Resolves if the start-up join fails (every seed failed; Sidecar exits then);
    /// pending forever once joined, or with `SIDECAR_JOIN_RETRY`.
    pub async fn join_failure(&self) -> super::transport::JoinError {
        let mut rx = self.joined.clone();
        if let Ok(outcome) = rx.wait_for(|o| matches!(o, Some(Err(_)))).await
            && let Some(Err(e)) = &*outcome
        {
            return e.clone();
        }
        std::future::pending().await
    }

    /// True once another member is alive (or there are no seeds to join).
    pub fn joined(&self) -> bool {
        self.members.borrow().joined
    }

    /// Names of alive and suspect members (the API's `ClusterMembers`).
    pub fn live_member_names(&self) -> Vec<String> {
        self.members().live().map(|m| m.name.clone()).collect()
    }

    /// Registers the cluster's families: members by state (read from the member list
    /// at scrape time) and the transport and SWIM counters.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(MembersCollector(self.members.clone())));
        for (name, help, counter) in self.counters.families() {
            registry.register(name, help, counter.clone());
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
            joined: true,
        };
        let (_tx, rx) = watch::channel(Arc::new(list));
        let (cmd, _cmd_rx) = mpsc::channel(1);
        let (_join_tx, joined) = watch::channel(None);
        let h = ClusterHandle {
            members: rx,
            counters: Arc::default(),
            commands: cmd,
            joined,
        };
        h.counters.dropped_foreign_cluster.inc_by(2);
        ClusterCounters::set(&h.counters.probes, 40);
        assert_eq!(h.live_member_names(), vec!["n0", "n1"]);
        let out = crate::metrics::scrape(|r| h.register_metrics(r));
        crate::metrics::assert_lines(
            &out,
            &[
                "# HELP sidecar_members Cluster members by state.",
                "# TYPE sidecar_members gauge",
                "sidecar_members{state=\"alive\"} 1",
                "sidecar_members{state=\"suspect\"} 1",
                "sidecar_members{state=\"dead\"} 1",
                "sidecar_members{state=\"left\"} 0",
                "# TYPE sidecar_gossip_dropped_foreign_cluster_total counter",
                "sidecar_gossip_dropped_foreign_cluster_total 2",
                "sidecar_gossip_datagrams_in_total 0",
                "sidecar_swim_probes_total 40",
                "sidecar_gossip_queue_dropped_total 0",
                "# TYPE sidecar_gossip_joined gauge",
                "sidecar_gossip_joined 1",
                "sidecar_gossip_dropped_connection_limit_total 0",
                "sidecar_swim_refused_members_total 0",
            ],
        );
        assert!(!out.contains("sidecar_cluster_members"), "{out}");
    }
}
