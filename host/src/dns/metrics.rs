//! The DNS interface's `/metrics` families. The per-query counters are resolved once at
//! start (one atomic add per query, no label lookups on the hot path).

use super::answer::{Bad, Rcode, Transport};
use super::index::Index;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    transport: &'static str,
    rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug)]
pub struct DnsMetrics {
    responses: Family<QueryLabels, Counter>,
    by_code: [[Counter; Rcode::ALL.len()]; 2],
    bad: Family<ReasonLabel, Counter>,
    by_reason: [Counter; Bad::ALL.len()],
    pub truncated: Counter,
    forwarded: Family<ResultLabel, Counter>,
    pub forward_ok: Counter,
    pub forward_failed: Counter,
    pub forward_refused: Counter,
    pub tcp_connections: Gauge,
    pub tcp_refused: Counter,
    pub tcp_idle_closed: Counter,
    index_names: Gauge,
    index_skipped: Gauge,
    index_builds: Counter,
    overlay_names: Gauge,
    publish_micros: Gauge,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        let responses = Family::<QueryLabels, Counter>::default();
        let by_code = [Transport::Udp, Transport::Tcp].map(|t| {
            Rcode::ALL.map(|r| {
                responses
                    .get_or_create(&QueryLabels {
                        transport: t.as_str(),
                        rcode: r.as_str(),
                    })
                    .clone()
            })
        });
        let bad = Family::<ReasonLabel, Counter>::default();
        let by_reason = Bad::ALL.map(|b| {
            bad.get_or_create(&ReasonLabel { reason: b.as_str() })
                .clone()
        });
        let forwarded = Family::<ResultLabel, Counter>::default();
        let fwd = |result| forwarded.get_or_create(&ResultLabel { result }).clone();
        let (forward_ok, forward_failed, forward_refused) =
            (fwd("answered"), fwd("failed"), fwd("over_limit"));
        DnsMetrics {
            responses,
            by_code,
            bad,
            by_reason,
            truncated: Counter::default(),
            forwarded,
            forward_ok,
            forward_failed,
            forward_refused,
            tcp_connections: Gauge::default(),
            tcp_refused: Counter::default(),
            tcp_idle_closed: Counter::default(),
            index_names: Gauge::default(),
            index_skipped: Gauge::default(),
            index_builds: Counter::default(),
            overlay_names: Gauge::default(),
            publish_micros: Gauge::default(),
        }
    }
}

impl DnsMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sidecar_dns_responses",
            "DNS responses sent, by transport and response code",
            self.responses.clone(),
        );
        registry.register(
            "sidecar_dns_bad_queries",
            "DNS queries refused as bad (malformed, not a query, unsupported opcode, class or type, name too long, EDNS version), by reason",
            self.bad.clone(),
        );
        registry.register(
            "sidecar_dns_truncated",
            "UDP responses truncated (TC bit set: the client retries over TCP)",
            self.truncated.clone(),
        );
        registry.register(
            "sidecar_dns_forwarded",
            "Queries for names outside the domain sent to the recursors, by result",
            self.forwarded.clone(),
        );
        registry.register(
            "sidecar_dns_tcp_connections",
            "Open DNS TCP connections",
            self.tcp_connections.clone(),
        );
        registry.register(
            "sidecar_dns_tcp_refused",
            "DNS TCP connections closed at once: the connection cap was reached",
            self.tcp_refused.clone(),
        );
        registry.register(
            "sidecar_dns_tcp_idle_closed",
            "DNS TCP connections closed by the idle timeout",
            self.tcp_idle_closed.clone(),
        );
        registry.register(
            "sidecar_dns_index_names",
            "Names the DNS interface answers for",
            self.index_names.clone(),
        );
        registry.register(
            "sidecar_dns_index_skipped_names",
            "Catalog names left out of DNS: a label over 63 bytes or a name over 255",
            self.index_skipped.clone(),
        );
        registry.register(
            "sidecar_dns_index_builds",
            "Full DNS answer index rebuilds (in the background after catalog or member-list changes, coalesced)",
            self.index_builds.clone(),
        );
        registry.register(
            "sidecar_dns_index_overlay_names",
            "Names answered from the changes since the last full rebuild",
            self.overlay_names.clone(),
        );
        registry.register(
            "sidecar_dns_index_publish_microseconds",
            "Time from a catalog snapshot to its answers being served (the overlay of the changes since the last full rebuild)",
            self.publish_micros.clone(),
        );
    }

    pub fn response(&self, transport: Transport, rcode: Rcode) {
        let t = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        self.by_code[t][rcode.index()].inc();
    }

    pub fn bad(&self, bad: Bad) {
        self.by_reason[bad.index()].inc();
    }

    /// A full build finished.
    pub fn indexed(&self, index: &Index) {
        self.index_builds.inc();
        self.index_names.set(index.names() as i64);
        self.index_skipped.set(index.skipped as i64);
    }

    /// An index was published (a full build, or one with an overlay made in `took`).
    pub fn overlaid(&self, index: &Index, took: Duration) {
        self.overlay_names.set(index.overlay_names() as i64);
        self.publish_micros
            .set(i64::try_from(took.as_micros()).unwrap_or(i64::MAX));
    }
}
