//! The catalog as xDS v3 resources, by Sidecar's rules (§8.2 of the behaviour
//! reference): per ServicePort of an ALIVE service a Cluster (EDS over ADS), its
//! ClusterLoadAssignment and a Listener, all named `<name>:<ServicePort>`; when two
//! service names claim one ServicePort, the older keeps it.
//!
//! Differences from Sidecar, each to keep Envoy from rejecting a whole batch: an empty
//! ProxyMode proxies as http (Sidecar dropped the listener), an unknown one as tcp;
//! endpoints whose address is not an IP are left out (one would NACK every CLA);
//! `use-hostnames` makes STRICT_DNS clusters with the hostnames inline, so Envoy does
//! the resolving (Sidecar resolved once, in the control plane).

use crate::sidecar::{self, SidecarProxy};
use prost::{Message, Name};
use sidecar_plugin_sdk::envoy::TcpProxy;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use xds_api::pb::envoy::config::cluster::v3::{Cluster, cluster};
use xds_api::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address, config_source,
    socket_address,
};
use xds_api::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use xds_api::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use xds_api::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use xds_api::pb::envoy::extensions::filters::http::router::v3::Router;
use xds_api::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use xds_api::pb::google::protobuf::{Any, Duration};

/// One catalog record, independent of the WIT bindings.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub ports: Vec<PortSpec>,
    pub proxy_mode: String,
    pub alive: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PortSpec {
    pub port: u16,
    pub service_port: u16,
    pub ip: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `bind-ip`: listener address (`ENVOY_BIND_IP`).
    pub bind_ip: IpAddr,
    /// `use-hostnames`: endpoints by hostname, resolved by Envoy (`ENVOY_USE_HOSTNAMES`).
    pub use_hostnames: bool,
    /// `connect-timeout-ms`: cluster connect timeout (Sidecar: 500 ms).
    pub connect_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_ip: IpAddr::from([192, 168, 168, 168]),
            use_hostnames: false,
            connect_timeout_ms: 500,
        }
    }
}

impl Settings {
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, String> {
        let s = sidecar_plugin_sdk::Settings::new(
            pairs,
            &["bind-ip", "use-hostnames", "connect-timeout-ms"],
        )?;
        let d = Settings::default();
        Ok(Settings {
            bind_ip: s.parse("bind-ip", "an IP address")?.unwrap_or(d.bind_ip),
            use_hostnames: s.flag("use-hostnames")?.unwrap_or(d.use_hostnames),
            connect_timeout_ms: s
                .map("connect-timeout-ms", |v| {
                    let v = v.trim();
                    v.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                        sidecar_plugin_sdk::settings::invalid(
                            "connect-timeout-ms",
                            v,
                            "a positive integer",
                        )
                    })
                })?
                .unwrap_or(d.connect_timeout_ms),
        })
    }
}

/// One encoded resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub type_url: String,
    pub name: String,
    pub value: Vec<u8>,
}

impl Resource {
    pub(crate) fn of<M: Message + Name>(name: &str, m: &M) -> Resource {
        Resource {
            type_url: M::type_url(),
            name: name.to_string(),
            value: m.encode_to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Websocket,
    Tcp,
}

/// `http` and an empty mode (Sidecar's Docker default) proxy as HTTP, `ws` as HTTP with
/// websocket upgrades, `tcp` and anything unknown as plain TCP.
fn mode(proxy_mode: &str) -> (Mode, bool) {
    match proxy_mode.trim().to_ascii_lowercase().as_str() {
        "http" | "" => (Mode::Http, true),
        "ws" => (Mode::Websocket, true),
        "tcp" => (Mode::Tcp, true),
        _ => (Mode::Tcp, false),
    }
}

struct Group<'a> {
    name: &'a str,
    service_port: u16,
    mode: Mode,
    endpoints: Vec<(String, u16)>,
}

/// The resources for the catalog, and warnings for the log.
pub fn build(instances: &[Instance], settings: &Settings) -> (Vec<Resource>, Vec<String>) {
    build_with_proxies(instances, &[], settings)
}

/// The resources for the catalog and this host's sidecar proxies (see
/// [`crate::sidecar`]), and warnings for the log.
pub fn build_with_proxies(
    instances: &[Instance],
    proxies: &[SidecarProxy],
    settings: &Settings,
) -> (Vec<Resource>, Vec<String>) {
    let mut warnings = Vec::new();
    // ServicePort -> the service name that owns it (oldest instance first).
    let mut owner: BTreeMap<u16, &str> = BTreeMap::new();
    let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
    for inst in instances.iter().filter(|i| i.alive) {
        if inst.name.is_empty() {
            continue;
        }
        for port in inst.ports.iter().filter(|p| p.service_port != 0) {
            match owner.get(&port.service_port) {
                Some(existing) if *existing != inst.name => {
                    let w = format!(
                        "service {} also claims ServicePort {}, which {existing} already owns: left out",
                        inst.name, port.service_port
                    );
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                    continue;
                }
                Some(_) => {}
                None => {
                    owner.insert(port.service_port, &inst.name);
                }
            }
            let key = format!("{}:{}", inst.name, port.service_port);
            let group = groups.entry(key).or_insert_with(|| {
                let (m, known) = mode(&inst.proxy_mode);
                if !known {
                    warnings.push(format!(
                        "service {} has ProxyMode {:?}; proxying it as tcp",
                        inst.name, inst.proxy_mode
                    ));
                }
                Group {
                    name: &inst.name,
                    service_port: port.service_port,
                    mode: m,
                    endpoints: Vec::new(),
                }
            });
            let address = if settings.use_hostnames {
                Some(inst.hostname.clone()).filter(|h| is_hostname(h))
            } else {
                port.ip.parse::<IpAddr>().ok().map(|ip| ip.to_string())
            };
            match address {
                Some(a) if port.port != 0 => group.endpoints.push((a, port.port)),
                _ => warnings.push(format!(
                    "service {} instance {} on {} has no usable address ({:?}:{}): left out",
                    inst.name,
                    inst.id,
                    inst.hostname,
                    if settings.use_hostnames {
                        &inst.hostname
                    } else {
                        &port.ip
                    },
                    port.port
                )),
            }
        }
    }

    let mut out = Resources::default();
    for (name, g) in &groups {
        let cla = assignment(name, &g.endpoints);
        out.clusters
            .push(Resource::of(name, &cluster(name, settings, cla.clone())));
        if !settings.use_hostnames {
            out.assignments.push(Resource::of(name, &cla));
        }
        out.listeners
            .push(Resource::of(name, &listener(name, g, settings)));
    }
    let catalog = Catalog {
        service_ports: groups.values().fold(BTreeMap::new(), |mut m, g| {
            m.entry(g.name.to_string())
                .or_insert_with(BTreeSet::new)
                .insert(g.service_port);
            m
        }),
        listeners: groups
            .iter()
            .map(|(name, g)| (settings.bind_ip, g.service_port, name.clone()))
            .collect(),
        names: groups.keys().cloned().collect(),
    };
    sidecar::add(proxies, &catalog, settings, &mut out, &mut warnings);
    let mut all = out.clusters;
    all.extend(out.assignments);
    all.extend(out.listeners);
    (all, warnings)
}

/// Resources by type, in the order they are returned (clusters before what uses them).
#[derive(Debug, Default)]
pub(crate) struct Resources {
    pub clusters: Vec<Resource>,
    pub assignments: Vec<Resource>,
    pub listeners: Vec<Resource>,
}

/// What the catalog's resources already hold, for the sidecar listeners.
pub(crate) struct Catalog {
    /// Service name -> the ServicePorts it has a cluster for.
    pub service_ports: BTreeMap<String, BTreeSet<u16>>,
    /// The addresses the catalog's listeners bind, and their names.
    pub listeners: Vec<(IpAddr, u16, String)>,
    /// The `<name>:<ServicePort>` names (clusters and listeners alike).
    pub names: BTreeSet<String>,
}

/// A DNS name Envoy can resolve (letters, digits, `-`, `.`).
fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

pub(crate) fn socket(address: &str, port: u16) -> xds_api::pb::envoy::config::core::v3::Address {
    xds_api::pb::envoy::config::core::v3::Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

pub(crate) fn assignment(name: &str, endpoints: &[(String, u16)]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: endpoints
                .iter()
                .map(|(addr, port)| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(addr, *port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub(crate) fn cluster(name: &str, settings: &Settings, cla: ClusterLoadAssignment) -> Cluster {
    let ms = settings.connect_timeout_ms;
    let mut c = Cluster {
        name: name.to_string(),
        connect_timeout: Some(Duration {
            seconds: i64::from(ms / 1000),
            nanos: ((ms % 1000) * 1_000_000) as i32,
        }),
        ..Default::default()
    };
    if settings.use_hostnames {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
        c.load_assignment = Some(cla);
    } else {
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        ));
        c.eds_cluster_config = Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        });
    }
    c
}

fn listener(name: &str, g: &Group<'_>, settings: &Settings) -> Listener {
    let filter = match g.mode {
        Mode::Tcp => Filter {
            name: "envoy.filters.network.tcp_proxy".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&TcpProxy {
                stat_prefix: "ingress_tcp".into(),
                cluster: name.to_string(),
                idle_timeout: None,
            }))),
        },
        Mode::Http | Mode::Websocket => Filter {
            name: "envoy.filters.network.http_connection_manager".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&http_manager(name, g)))),
        },
    };
    Listener {
        name: name.to_string(),
        address: Some(socket(&settings.bind_ip.to_string(), g.service_port)),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn http_manager(name: &str, g: &Group<'_>) -> HttpConnectionManager {
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(name.to_string())),
            // 0 s: no per-request timeout, as Sidecar (websockets and long polls).
            timeout: Some(Duration {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    HttpConnectionManager {
        stat_prefix: "ingress_http".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
            RouteConfiguration {
                name: name.to_string(),
                virtual_hosts: vec![VirtualHost {
                    name: g.name.to_string(),
                    domains: vec!["*".into()],
                    routes: vec![route],
                    ..Default::default()
                }],
                validate_clusters: Some(xds_api::pb::google::protobuf::BoolValue { value: false }),
                ..Default::default()
            },
        )),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(
                any(&Router::default()),
            )),
            ..Default::default()
        }],
        upgrade_configs: if g.mode == Mode::Websocket {
            vec![http_connection_manager::UpgradeConfig {
                upgrade_type: "websocket".into(),
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

pub(crate) fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, name: &str, mode: &str, ports: &[(u16, u16, &str)]) -> Instance {
        Instance {
            id: id.into(),
            name: name.into(),
            hostname: "host1".into(),
            ports: ports
                .iter()
                .map(|(port, sp, ip)| PortSpec {
                    port: *port,
                    service_port: *sp,
                    ip: ip.to_string(),
                })
                .collect(),
            proxy_mode: mode.into(),
            alive: true,
        }
    }

    fn decode<M: Message + Default>(r: &Resource) -> M {
        M::decode(r.value.as_slice()).expect("decodes")
    }

    fn of_type<'a>(rs: &'a [Resource], ty: &str) -> Vec<&'a Resource> {
        rs.iter().filter(|r| r.type_url.ends_with(ty)).collect()
    }

    #[test]
    fn one_cluster_assignment_and_listener_per_service_port() {
        let (rs, w) = build(
            &[
                inst(
                    "a",
                    "web",
                    "http",
                    &[(9001, 10000, "10.0.0.1"), (9002, 10001, "10.0.0.1")],
                ),
                inst(
                    "b",
                    "web",
                    "http",
                    &[(9003, 10000, "10.0.0.2"), (9004, 10001, "10.0.0.2")],
                ),
            ],
            &Settings::default(),
        );
        assert!(w.is_empty(), "{w:?}");
        let names = |ty| {
            of_type(&rs, ty)
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(".Cluster"), ["web:10000", "web:10001"]);
        assert_eq!(names(".ClusterLoadAssignment"), ["web:10000", "web:10001"]);
        assert_eq!(names(".Listener"), ["web:10000", "web:10001"]);
        let cla: ClusterLoadAssignment = decode(of_type(&rs, ".ClusterLoadAssignment")[0]);
        assert_eq!(cla.endpoints[0].lb_endpoints.len(), 2);
        let l: Listener = decode(of_type(&rs, ".Listener")[0]);
        let Some(address::Address::SocketAddress(sa)) = l.address.and_then(|a| a.address) else {
            panic!("socket address")
        };
        assert_eq!(sa.address, "192.168.168.168");
    }

    #[test]
    fn older_service_keeps_the_port_and_dead_ones_are_skipped() {
        let mut dead = inst("c", "gone", "http", &[(1, 10002, "10.0.0.1")]);
        dead.alive = false;
        let (rs, w) = build(
            &[
                inst("a", "old", "tcp", &[(9001, 10000, "10.0.0.1")]),
                inst("b", "new", "tcp", &[(9002, 10000, "10.0.0.2")]),
                dead,
            ],
            &Settings::default(),
        );
        let names: Vec<_> = rs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["old:10000", "old:10000", "old:10000"]);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn tcp_listener_uses_tcp_proxy_and_ws_upgrades() {
        let (rs, _) = build(
            &[
                inst("a", "db", "tcp", &[(9001, 10000, "10.0.0.1")]),
                inst("b", "chat", "ws", &[(9002, 10001, "10.0.0.1")]),
            ],
            &Settings::default(),
        );
        for l in of_type(&rs, ".Listener") {
            let l: Listener = decode(l);
            let f = &l.filter_chains[0].filters[0];
            let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
                panic!("typed config")
            };
            if l.name == "db:10000" {
                assert_eq!(f.name, "envoy.filters.network.tcp_proxy");
                let t = TcpProxy::decode(any.value.as_slice()).expect("tcp proxy");
                assert_eq!(t.cluster, "db:10000");
            } else {
                let h = HttpConnectionManager::decode(any.value.as_slice()).expect("hcm");
                assert_eq!(h.upgrade_configs[0].upgrade_type, "websocket");
            }
        }
    }

    #[test]
    fn bad_addresses_and_hostnames() {
        let (rs, w) = build(
            &[inst("a", "web", "http", &[(9001, 10000, "not-an-ip")])],
            &Settings::default(),
        );
        let cla: ClusterLoadAssignment = decode(of_type(&rs, ".ClusterLoadAssignment")[0]);
        assert!(cla.endpoints[0].lb_endpoints.is_empty());
        assert_eq!(w.len(), 1);

        let settings = Settings {
            use_hostnames: true,
            ..Settings::default()
        };
        let (rs, _) = build(
            &[inst("a", "web", "http", &[(9001, 10000, "10.0.0.1")])],
            &settings,
        );
        assert!(of_type(&rs, ".ClusterLoadAssignment").is_empty());
        let c: Cluster = decode(of_type(&rs, ".Cluster")[0]);
        assert!(c.load_assignment.is_some());
    }

    #[test]
    fn settings_are_parsed_and_checked() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = Settings::parse(&pairs(&[
            ("bind-ip", " 10.0.0.1 "),
            ("use-hostnames", "true"),
            ("connect-timeout-ms", "250"),
        ]))
        .expect("valid");
        assert_eq!(s.bind_ip, IpAddr::from([10, 0, 0, 1]));
        assert!(s.use_hostnames);
        assert_eq!(s.connect_timeout_ms, 250);
        let d = Settings::parse(&[]).expect("defaults");
        assert_eq!(d.connect_timeout_ms, 500);
        for (pair, message) in [
            (("bind-ip", "x"), "`bind-ip` = \"x\" is not an IP address"),
            (
                ("use-hostnames", "yes"),
                "`use-hostnames` = \"yes\" is not a boolean",
            ),
            (
                ("connect-timeout-ms", "0"),
                "`connect-timeout-ms` = \"0\" is not a positive integer",
            ),
            (
                ("bind_ip", "1.2.3.4"),
                "unknown setting `bind_ip` (known: bind-ip, use-hostnames, connect-timeout-ms)",
            ),
        ] {
            assert_eq!(
                Settings::parse(&pairs(&[pair])).expect_err("invalid"),
                message
            );
        }
    }
}
