//! The resource set every Envoy converges to: the emitter's output, validated, grouped
//! by type, with content hashes for versions.
//!
//! Validation runs before anything is published, because Envoy rejects a whole
//! response when one resource in it is bad (one broken service would freeze every
//! other service's config). A resource that fails is quarantined: left out, logged and
//! reported, while the rest is served.

use prost::Message;
use sidecar_plugin_host::XdsResource;
use sidecar_plugin_sdk::envoy::TcpProxy;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use xds_api::pb::envoy::config::cluster::v3::Cluster;
use xds_api::pb::envoy::config::core::v3::{Address, address, socket_address};
use xds_api::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use xds_api::pb::envoy::config::listener::v3::{Listener, filter};
use xds_api::pb::envoy::config::route::v3::RouteConfiguration;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// Listeners and routes use clusters: they are published after the clusters they may
/// reference, and clusters are removed after them.
pub fn is_dependent(type_url: &str) -> bool {
    type_url == LISTENER || type_url == ROUTE
}

/// Types Envoy subscribes to as a wildcard when it names nothing.
pub fn is_wildcard_type(type_url: &str) -> bool {
    type_url == LISTENER || type_url == CLUSTER
}

/// One encoded resource with its content hash.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    pub type_url: String,
    pub name: String,
    pub value: Vec<u8>,
    pub hash: u64,
}

impl Resource {
    pub fn new(type_url: &str, name: &str, value: Vec<u8>) -> Self {
        let hash = xxhash_rust::xxh3::xxh3_64(&value);
        Resource {
            type_url: type_url.to_string(),
            name: name.to_string(),
            value,
            hash,
        }
    }

    /// The empty assignment sent for a cluster name Envoy asks for and we do not know,
    /// so the cluster finishes warming instead of waiting forever.
    pub fn empty_assignment(name: &str) -> Self {
        let cla = ClusterLoadAssignment {
            cluster_name: name.to_string(),
            ..Default::default()
        };
        Resource::new(ENDPOINT, name, cla.encode_to_vec())
    }
}

pub type Resources = BTreeMap<String, Arc<Resource>>;

/// A resource left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub type_url: String,
    pub name: String,
    pub reason: String,
}

/// The complete, validated state of the world.
#[derive(Debug, Default)]
pub struct XdsSnapshot {
    pub types: BTreeMap<String, Resources>,
    /// Hash of everything (for the status page).
    pub version: String,
}

impl XdsSnapshot {
    pub fn resources(&self, type_url: &str) -> Option<&Resources> {
        self.types.get(type_url)
    }

    pub fn len(&self) -> usize {
        self.types.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates the emitter's output. Invalid resources are quarantined.
    pub fn build(emitted: Vec<XdsResource>) -> (XdsSnapshot, Vec<Quarantined>) {
        let mut types: BTreeMap<String, Resources> = BTreeMap::new();
        let mut bad = Vec::new();
        let mut listener_addrs: BTreeMap<String, String> = BTreeMap::new();
        for r in emitted {
            let reject = |reason: String| Quarantined {
                type_url: r.type_url.clone(),
                name: r.name.clone(),
                reason,
            };
            if r.name.is_empty() || r.type_url.is_empty() {
                bad.push(reject("empty name or type URL".into()));
                continue;
            }
            if types
                .get(&r.type_url)
                .is_some_and(|m| m.contains_key(&r.name))
            {
                bad.push(reject("duplicate name".into()));
                continue;
            }
            match check(&r) {
                Ok(Some(addr)) => {
                    if let Some(other) = listener_addrs.get(&addr) {
                        bad.push(reject(format!(
                            "address {addr} already used by listener {other}"
                        )));
                        continue;
                    }
                    listener_addrs.insert(addr, r.name.clone());
                }
                Ok(None) => {}
                Err(reason) => {
                    bad.push(reject(reason));
                    continue;
                }
            }
            let res = Arc::new(Resource::new(&r.type_url, &r.name, r.value));
            types.entry(r.type_url).or_default().insert(r.name, res);
        }
        let version = format!("{:016x}", hash_all(types.values().flat_map(|m| m.values())));
        (XdsSnapshot { types, version }, bad)
    }
}

/// A stable version for a list of resources (names and content).
pub fn hash_all<'a>(resources: impl Iterator<Item = &'a Arc<Resource>>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for r in resources {
        h.update(r.type_url.as_bytes());
        h.update(&[0]);
        h.update(r.name.as_bytes());
        h.update(&[0]);
        h.update(&r.hash.to_le_bytes());
    }
    h.digest()
}

/// Structural checks of the known types. Returns the listener's `ip:port` for
/// duplicate detection.
fn check(r: &XdsResource) -> Result<Option<String>, String> {
    let bytes = r.value.as_slice();
    match r.type_url.as_str() {
        CLUSTER => {
            let c = Cluster::decode(bytes).map_err(|e| format!("not a Cluster: {e}"))?;
            same_name(&c.name, &r.name)?;
            if let Some(t) = &c.connect_timeout
                && (t.seconds < 0 || t.nanos < 0 || (t.seconds == 0 && t.nanos == 0))
            {
                return Err("connect_timeout must be positive".into());
            }
            Ok(None)
        }
        ENDPOINT => {
            let cla = ClusterLoadAssignment::decode(bytes)
                .map_err(|e| format!("not a ClusterLoadAssignment: {e}"))?;
            same_name(&cla.cluster_name, &r.name)?;
            for lle in &cla.endpoints {
                for lb in &lle.lb_endpoints {
                    if let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &lb.host_identifier {
                        socket(ep.address.as_ref())?;
                    }
                }
            }
            Ok(None)
        }
        LISTENER => {
            let l = Listener::decode(bytes).map_err(|e| format!("not a Listener: {e}"))?;
            same_name(&l.name, &r.name)?;
            let addr = socket(l.address.as_ref())?;
            if l.filter_chains.is_empty() && l.default_filter_chain.is_none() {
                return Err("listener without filter chains".into());
            }
            for chain in &l.filter_chains {
                for f in &chain.filters {
                    if let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type
                        && any.type_url.ends_with(".TcpProxy")
                    {
                        let t = TcpProxy::decode(any.value.as_slice())
                            .map_err(|e| format!("filter {}: not a TcpProxy: {e}", f.name))?;
                        if t.stat_prefix.is_empty() {
                            return Err(format!("filter {}: empty stat_prefix", f.name));
                        }
                    }
                }
            }
            Ok(Some(addr))
        }
        ROUTE => {
            let rc = RouteConfiguration::decode(bytes)
                .map_err(|e| format!("not a RouteConfiguration: {e}"))?;
            same_name(&rc.name, &r.name)?;
            Ok(None)
        }
        // Other types (secrets, runtime, ...) are served as they are.
        _ => Ok(None),
    }
}

fn same_name(inner: &str, outer: &str) -> Result<(), String> {
    if inner == outer {
        Ok(())
    } else {
        Err(format!("resource is named {inner:?} inside"))
    }
}

/// `ip:port` of a socket address; Envoy refuses anything else where we check.
fn socket(addr: Option<&Address>) -> Result<String, String> {
    let Some(Address {
        address: Some(address::Address::SocketAddress(sa)),
    }) = addr
    else {
        return Err("missing socket address".into());
    };
    let ip: IpAddr = sa
        .address
        .parse()
        .map_err(|_| format!("{:?} is not an IP address", sa.address))?;
    let port = match sa.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(p)) if p <= 65535 => p,
        Some(socket_address::PortSpecifier::PortValue(p)) => {
            return Err(format!("port {p} out of range"));
        }
        _ => return Err("missing port".into()),
    };
    Ok(format!("{ip}:{port}"))
}
