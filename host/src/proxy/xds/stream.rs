//! One ADS stream's protocol state, without I/O (state of the world).
//!
//! The server feeds it Envoy's requests, new snapshots and clock ticks; it returns the
//! responses to send. Rules, each from a failure seen with real Envoys:
//!
//! * An empty nonce is an initial or reconnect request: answer with current state.
//! * The nonce of our last response, while it is in flight: an ACK, or a NACK when
//!   `error_detail` is set. A NACKed version is never re-sent (no NACK loop); the next
//!   content change is.
//! * The nonce of our last response after its ACK was processed: Envoy asks again
//!   (it does so for EDS after a cluster changed, and waits 15 s for an answer
//!   otherwise): answer with current state even if nothing changed.
//! * Any other nonce is stale: ignored.
//! * At most one response per type in flight; newer state waits for the ACK and is
//!   coalesced.
//! * Make before break: a new snapshot first publishes clusters and endpoints as the
//!   union of what Envoy holds and what is new; once Envoy ACKs them (it ACKs CDS only
//!   after the clusters warmed), listeners and routes switch; then unused clusters go.
//!   A phase that is not ACKed within [`PHASE_TIMEOUT`] moves on with a warning.
//! * Nothing is sent before the first snapshot (the agent's first full discovery): a
//!   restarted daemon never answers Envoy with an empty world.

use super::resources::{
    CLUSTER, ENDPOINT, Resource, Resources, XdsSnapshot, hash_all, is_dependent, is_wildcard_type,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const PHASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request as the state machine sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub type_url: String,
    pub version_info: String,
    pub names: Vec<String>,
    pub nonce: String,
    /// `error_detail.message` of a NACK.
    pub error: Option<String>,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub type_url: String,
    pub version: String,
    pub nonce: String,
    pub resources: Vec<Arc<Resource>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing to converge to yet (no snapshot) or converged.
    Idle,
    /// Clusters and endpoints: union of held and new.
    Clusters,
    /// Listeners and routes switch to the new snapshot.
    Listeners,
    /// Clusters nothing uses any more are removed.
    Cleanup,
}

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    last_nonce: Option<String>,
    last_version: Option<String>,
    /// The (unfiltered) view the last response was cut from.
    last_view: Resources,
    in_flight: bool,
    sent_at: Option<Instant>,
    /// Answer even if the content is what we sent last.
    force: bool,
    acked_version: Option<String>,
    /// What Envoy holds: the view of the last ACKed response.
    acked_view: Resources,
    nacked_version: Option<String>,
    last_error: Option<String>,
    pushes: u64,
    acks: u64,
    nacks: u64,
}

/// What the status page shows per stream and type.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TypeReport {
    pub type_url: String,
    pub acked_version: Option<String>,
    pub nacked_version: Option<String>,
    pub last_error: Option<String>,
    pub in_flight: bool,
    pub resources: usize,
    pub pushes: u64,
    pub acks: u64,
    pub nacks: u64,
}

/// What happened while handling one input, for counters and logs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Events {
    pub acks: Vec<(String, Duration)>,
    pub nacks: Vec<(String, String)>,
    pub stale: u64,
    pub phase_timeouts: u64,
}

pub struct Stream {
    types: BTreeMap<String, TypeState>,
    target: Option<Arc<XdsSnapshot>>,
    phase: Phase,
    phase_started: Instant,
    nonce: u64,
    /// Set when a phase timed out: listeners no longer wait for the clusters' ACK.
    gate_forced: bool,
    /// Since when listeners wait for clusters.
    gate_closed_since: Option<Instant>,
    pub events: Events,
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl Stream {
    pub fn new() -> Self {
        Stream {
            types: BTreeMap::new(),
            target: None,
            phase: Phase::Idle,
            phase_started: Instant::now(),
            nonce: 0,
            gate_forced: false,
            gate_closed_since: None,
            events: Events::default(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A new state of the world to converge to.
    pub fn on_snapshot(&mut self, snap: Arc<XdsSnapshot>, now: Instant) -> Vec<Response> {
        self.target = Some(snap);
        self.phase = Phase::Clusters;
        self.phase_started = now;
        self.gate_forced = false;
        self.poll(now)
    }

    /// A request from Envoy.
    pub fn on_request(&mut self, req: Request, now: Instant) -> Vec<Response> {
        let wildcard_type = is_wildcard_type(&req.type_url);
        let ts = self.types.entry(req.type_url.clone()).or_default();
        let names: BTreeSet<String> = req.names.iter().cloned().collect();
        let wildcard = wildcard_type && (names.is_empty() || names.contains("*"));
        let subscription_changed = names != ts.names || wildcard != ts.wildcard;
        if req.nonce.is_empty() {
            ts.force = true;
        } else if ts.last_nonce.as_deref() == Some(req.nonce.as_str()) {
            if ts.in_flight {
                ts.in_flight = false;
                let latency = ts.sent_at.map(|t| now.saturating_duration_since(t));
                match &req.error {
                    Some(msg) => {
                        ts.nacked_version = ts.last_version.clone();
                        ts.last_error = Some(msg.clone());
                        ts.nacks += 1;
                        self.events.nacks.push((req.type_url.clone(), msg.clone()));
                    }
                    None => {
                        ts.acked_version = ts.last_version.clone();
                        ts.acked_view = ts.last_view.clone();
                        ts.nacked_version = None;
                        ts.acks += 1;
                        self.events
                            .acks
                            .push((req.type_url.clone(), latency.unwrap_or_default()));
                    }
                }
                if subscription_changed {
                    ts.force = true;
                }
            } else {
                // Asked again for what it already ACKed: answer.
                ts.force = true;
            }
        } else {
            self.events.stale += 1;
            return self.poll(now);
        }
        ts.names = names;
        ts.wildcard = wildcard;
        self.poll(now)
    }

    /// Moves a stuck phase on, and opens a gate held closed, after [`PHASE_TIMEOUT`].
    pub fn on_tick(&mut self, now: Instant) -> Vec<Response> {
        let phase_stuck =
            self.phase != Phase::Idle && now.duration_since(self.phase_started) >= PHASE_TIMEOUT;
        let gate_stuck = !self.gate_forced
            && self
                .gate_closed_since
                .is_some_and(|t| now.duration_since(t) >= PHASE_TIMEOUT);
        if phase_stuck || gate_stuck {
            self.events.phase_timeouts += 1;
            self.gate_forced = true;
            tracing::warn!(phase = ?self.phase, "Envoy did not ACK the clusters within {PHASE_TIMEOUT:?}; publishing listeners anyway");
            if phase_stuck {
                self.advance(now);
            }
        }
        self.poll(now)
    }

    fn advance(&mut self, now: Instant) {
        self.phase = match self.phase {
            Phase::Clusters => Phase::Listeners,
            Phase::Listeners => Phase::Cleanup,
            Phase::Cleanup | Phase::Idle => Phase::Idle,
        };
        self.phase_started = now;
    }

    /// The full view of one type in the current phase; `None` holds the type back.
    fn view(&self, type_url: &str) -> Option<Resources> {
        let target = self.target.as_ref()?;
        let mut new = target.resources(type_url).cloned().unwrap_or_default();
        if type_url == ENDPOINT {
            // Endpoints of a cluster on its way out stay as they were while Envoy still
            // subscribes to them (it unsubscribes once the cluster is gone).
            if let Some(ts) = self.types.get(type_url) {
                for n in &ts.names {
                    if !new.contains_key(n)
                        && let Some(r) = ts.acked_view.get(n)
                    {
                        new.insert(n.clone(), r.clone());
                    }
                }
            }
            return Some(new);
        }
        let dependent = is_dependent(type_url);
        match (self.phase, dependent) {
            (Phase::Clusters, true) => None,
            (Phase::Clusters | Phase::Listeners, false) => {
                let mut union = self
                    .types
                    .get(type_url)
                    .map(|t| t.acked_view.clone())
                    .unwrap_or_default();
                union.extend(new);
                Some(union)
            }
            _ => Some(new),
        }
    }

    /// The response content for one type: all of the view for a wildcard, else the
    /// requested names (an empty assignment for an unknown cluster name).
    fn cut(type_url: &str, ts: &TypeState, view: &Resources) -> Vec<Arc<Resource>> {
        if ts.wildcard {
            return view.values().cloned().collect();
        }
        ts.names
            .iter()
            .filter_map(|n| match view.get(n) {
                Some(r) => Some(r.clone()),
                None if type_url == ENDPOINT => Some(Arc::new(Resource::empty_assignment(n))),
                None => None,
            })
            .collect()
    }

    /// Sends what needs sending for one type; returns whether the type is settled
    /// (Envoy ACKed the current view, or rejected it and we will not resend).
    fn poll_type(
        &mut self,
        type_url: &str,
        may_send: bool,
        now: Instant,
        out: &mut Vec<Response>,
    ) -> bool {
        let Some(view) = self.view(type_url) else {
            return true;
        };
        let Some(ts) = self.types.get_mut(type_url) else {
            return true;
        };
        let resources = Self::cut(type_url, ts, &view);
        let version = format!("{:016x}", hash_all(resources.iter()));
        let changed = ts.last_version.as_deref() != Some(version.as_str());
        let rejected = ts.nacked_version.as_deref() == Some(version.as_str());
        if may_send && !ts.in_flight && (ts.force || (changed && !rejected)) {
            self.nonce += 1;
            let nonce = self.nonce.to_string();
            ts.force = false;
            ts.in_flight = true;
            ts.sent_at = Some(now);
            ts.last_nonce = Some(nonce.clone());
            ts.last_version = Some(version.clone());
            ts.last_view = view;
            ts.pushes += 1;
            out.push(Response {
                type_url: type_url.to_string(),
                version: version.clone(),
                nonce,
                resources,
            });
        }
        !ts.in_flight
            && (ts.acked_version.as_deref() == Some(version.as_str())
                || ts.nacked_version.as_deref() == Some(version.as_str()))
    }

    fn poll(&mut self, now: Instant) -> Vec<Response> {
        let mut out = Vec::new();
        let Some(target) = self.target.clone() else {
            return out;
        };
        let (dependents, providers): (Vec<String>, Vec<String>) =
            self.types.keys().cloned().partition(|t| is_dependent(t));
        loop {
            let mut providers_settled = true;
            for t in &providers {
                providers_settled &= self.poll_type(t, true, now, &mut out);
            }
            // Listeners wait until Envoy holds the clusters they may use.
            let has_clusters = target.resources(CLUSTER).is_some_and(|c| !c.is_empty());
            let clusters_known = !has_clusters || self.types.contains_key(CLUSTER);
            let gate_open = (providers_settled && clusters_known) || self.gate_forced;
            if gate_open {
                self.gate_closed_since = None;
            } else {
                self.gate_closed_since.get_or_insert(now);
            }
            let mut dependents_settled = true;
            for t in &dependents {
                dependents_settled &= self.poll_type(t, gate_open, now, &mut out);
            }
            let settled = match self.phase {
                Phase::Idle => false,
                Phase::Clusters => providers_settled,
                Phase::Listeners => dependents_settled,
                Phase::Cleanup => providers_settled && dependents_settled,
            };
            if settled {
                self.advance(now);
                continue;
            }
            return out;
        }
    }

    pub fn report(&self) -> Vec<TypeReport> {
        self.types
            .iter()
            .map(|(t, s)| TypeReport {
                type_url: t.clone(),
                acked_version: s.acked_version.clone(),
                nacked_version: s.nacked_version.clone(),
                last_error: s.last_error.clone(),
                in_flight: s.in_flight,
                resources: s.acked_view.len(),
                pushes: s.pushes,
                acks: s.acks,
                nacks: s.nacks,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
