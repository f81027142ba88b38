//! Sidecar proxies (static.json `Connect.SidecarService`, as in Consul) as Envoy
//! listeners: per proxy a public Listener `<proxy ID>:public` with a TcpProxy to a
//! STATIC Cluster of the same name (the parent service on this host); per upstream a
//! Listener `<proxy ID>:upstream:<port>` with a TcpProxy to the destination's
//! `<name>:<ServicePort>` cluster.
//!
//! An upstream whose destination has no ALIVE instance still gets that cluster, empty
//! (`<name>:0` while the ServicePort is "the lowest" and unknown): Envoy would accept a
//! TcpProxy naming a missing cluster, but this way the cluster is already known when
//! the first instance appears (an endpoint update, no listener change) and connections
//! fail at once until then. Every value is checked first: a proxy or upstream with an
//! unusable one, or whose address and port are already bound, is left out with a
//! warning (the host would quarantine a second listener on one address anyway).

use crate::resources::{self, Catalog, Resource, Resources, Settings, any, assignment, socket};
use sidecar_plugin_sdk::envoy::TcpProxy;
use sidecar_plugin_sdk::truncate;
use std::collections::BTreeSet;
use std::net::IpAddr;
use xds_api::pb::envoy::config::cluster::v3::cluster;
use xds_api::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};

/// Where the host says a local address defaults to when static.json leaves it out.
const DEFAULT_LOCAL_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A sidecar proxy as the host reports it (independent of the WIT bindings).
#[derive(Debug, Clone, Default)]
pub struct SidecarProxy {
    pub id: String,
    pub name: String,
    /// The public listener: this host's advertised IP and the proxy's port.
    pub address: String,
    pub port: u16,
    pub destination_service_name: String,
    pub destination_service_id: String,
    /// Where the parent service listens.
    pub local_service_address: String,
    pub local_service_port: u16,
    pub upstreams: Vec<Upstream>,
}

/// A local listener forwarding to a service of the cluster.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    pub destination_name: String,
    /// The destination's ServicePort; 0 means its lowest.
    pub destination_port: u16,
    pub local_bind_address: String,
    pub local_bind_port: u16,
}

/// Adds the proxies' resources to `out` (after the catalog's, whose listeners keep
/// their addresses) and their warnings to `warnings`.
pub(crate) fn add(
    proxies: &[SidecarProxy],
    catalog: &Catalog,
    settings: &Settings,
    out: &mut Resources,
    warnings: &mut Vec<String>,
) {
    let mut s = State {
        binds: catalog
            .listeners
            .iter()
            .map(|(ip, port, name)| (*ip, *port, format!("listener {name}")))
            .collect(),
        clusters: catalog.names.clone(),
        listeners: catalog.names.clone(),
        warnings,
    };
    for p in proxies {
        if let Some((what, v)) = [
            ("ID", &p.id),
            ("name", &p.name),
            ("destination service name", &p.destination_service_name),
            ("destination service ID", &p.destination_service_id),
        ]
        .into_iter()
        .find(|(_, v)| !is_safe_value(v))
        {
            s.warnings.push(format!(
                "sidecar proxy {}: unusable {what} {}: left out",
                shown(&p.id),
                shown(v)
            ));
            continue;
        }
        if let Err(w) = public(p, settings, &mut s, out) {
            s.warnings.push(w);
        }
        for u in &p.upstreams {
            if let Err(w) = upstream(p, u, catalog, settings, &mut s, out) {
                s.warnings.push(w);
            }
        }
    }
}

/// Binds and names claimed so far, and the warnings.
struct State<'a> {
    binds: Vec<(IpAddr, u16, String)>,
    /// Cluster and listener names taken (the catalog's first).
    clusters: BTreeSet<String>,
    listeners: BTreeSet<String>,
    warnings: &'a mut Vec<String>,
}

impl State<'_> {
    /// Claims `ip:port` for `holder`, unless a listener binds it already (a wildcard
    /// overlaps every address: which socket gets a connection would be the kernel's
    /// choice).
    fn bind(&mut self, ip: IpAddr, port: u16, holder: &str) -> Result<(), String> {
        if let Some((_, _, other)) = self
            .binds
            .iter()
            .find(|(i, p, _)| *p == port && (*i == ip || i.is_unspecified() || ip.is_unspecified()))
        {
            return Err(format!(
                "{holder}: {} is already bound by {other}: left out",
                socket_text(ip, port)
            ));
        }
        self.binds.push((ip, port, holder.to_string()));
        Ok(())
    }

    /// A listener name (and cluster name, with `cluster`): `base`, or `base` with a
    /// hash of `salt` when taken (a catalog name crafted to match, or two upstreams on
    /// one port and different addresses), so names are stable and unique. The `~`
    /// keeps a hashed name from ever looking like a catalog `<name>:<ServicePort>`.
    fn name(&mut self, base: String, salt: &str, cluster: bool) -> String {
        let hashed = format!("{base}~{:08x}", fnv1a(salt) >> 32);
        let mut name = base;
        let mut n = 2;
        while self.listeners.contains(&name) || (cluster && self.clusters.contains(&name)) {
            name = if n == 2 {
                hashed.clone()
            } else {
                format!("{hashed}~{n}")
            };
            n += 1;
        }
        self.listeners.insert(name.clone());
        if cluster {
            self.clusters.insert(name.clone());
        }
        name
    }
}

/// The public Listener and its STATIC Cluster, both `<proxy ID>:public`.
fn public(
    p: &SidecarProxy,
    settings: &Settings,
    s: &mut State<'_>,
    out: &mut Resources,
) -> Result<(), String> {
    let what = format!("sidecar proxy {} public listener", p.id);
    let (Some(ip), true) = (parse_ip(&p.address), p.port != 0) else {
        return Err(format!(
            "{what}: address {}:{} is not an IP and a port: left out",
            shown(&p.address),
            p.port
        ));
    };
    let (Some(local), true) = (
        local_ip(&p.local_service_address),
        p.local_service_port != 0,
    ) else {
        return Err(format!(
            "{what}: local service address {}:{} is not an IP and a port: left out",
            shown(&p.local_service_address),
            p.local_service_port
        ));
    };
    s.bind(ip, p.port, &what)?;
    let name = s.name(format!("{}:public", p.id), &p.address, true);
    let cla = assignment(&name, &[(local.to_string(), p.local_service_port)]);
    let mut c = resources::cluster(&name, settings, cla.clone());
    c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
        cluster::DiscoveryType::Static as i32,
    ));
    c.eds_cluster_config = None;
    c.load_assignment = Some(cla);
    out.clusters.push(Resource::of(&name, &c));
    out.listeners.push(Resource::of(
        &name,
        &tcp_listener(
            &name,
            ip,
            p.port,
            &name,
            &stat_prefix(&p.id, "public", p.port),
        ),
    ));
    Ok(())
}

/// An upstream Listener `<proxy ID>:upstream:<port>` to the destination's cluster.
fn upstream(
    p: &SidecarProxy,
    u: &Upstream,
    catalog: &Catalog,
    settings: &Settings,
    s: &mut State<'_>,
    out: &mut Resources,
) -> Result<(), String> {
    let what = format!(
        "sidecar proxy {} upstream {}:{}",
        p.id,
        shown(&u.destination_name),
        u.destination_port
    );
    if !is_safe_value(&u.destination_name) {
        return Err(format!("{what}: unusable destination name: left out"));
    }
    let (Some(ip), true) = (local_ip(&u.local_bind_address), u.local_bind_port != 0) else {
        return Err(format!(
            "{what}: local bind {}:{} is not an IP and a port: left out",
            shown(&u.local_bind_address),
            u.local_bind_port
        ));
    };
    s.bind(ip, u.local_bind_port, &what)?;
    let ports = catalog.service_ports.get(&u.destination_name);
    // 0: the lowest ServicePort (the sets are ascending); while there is none, `:0`.
    let service_port = match u.destination_port {
        0 => ports.and_then(|p| p.first().copied()).unwrap_or(0),
        port => port,
    };
    let target = format!("{}:{service_port}", u.destination_name);
    if !ports.is_some_and(|p| p.contains(&service_port)) {
        if ports.is_some() {
            s.warnings.push(format!(
                "{what}: service {} has no proxied ServicePort {}; its cluster stays empty",
                u.destination_name, u.destination_port
            ));
        }
        // Empty, exactly as the catalog's resources would make it, once for all
        // upstreams naming it.
        if s.clusters.insert(target.clone()) {
            let cla = assignment(&target, &[]);
            out.clusters.push(Resource::of(
                &target,
                &resources::cluster(&target, settings, cla.clone()),
            ));
            if !settings.use_hostnames {
                out.assignments.push(Resource::of(&target, &cla));
            }
        }
    }
    let name = s.name(
        format!("{}:upstream:{}", p.id, u.local_bind_port),
        &ip.to_string(),
        false,
    );
    out.listeners.push(Resource::of(
        &name,
        &tcp_listener(
            &name,
            ip,
            u.local_bind_port,
            &target,
            &stat_prefix(&p.id, "upstream", u.local_bind_port),
        ),
    ));
    Ok(())
}

fn tcp_listener(name: &str, ip: IpAddr, port: u16, cluster: &str, stat_prefix: &str) -> Listener {
    Listener {
        name: name.to_string(),
        address: Some(socket(&ip.to_string(), port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&TcpProxy {
                    stat_prefix: stat_prefix.to_string(),
                    cluster: cluster.to_string(),
                    idle_timeout: None,
                }))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `<proxy ID>_<kind>_<port>` with characters Envoy keeps in stat names (`.` would
/// split the name, `:` is replaced anyway).
fn stat_prefix(id: &str, kind: &str, port: u16) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("sidecar_{id}_{kind}_{port}")
}

/// One token of a name (`[A-Za-z0-9._:[]-]`, at most 253 bytes): the same rule as the
/// HAProxy emitter's, so both leave out the same proxies.
fn is_safe_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

/// An IP literal (IPv6 possibly in brackets).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse().ok()
}

/// A local address from the host, or its documented default (127.0.0.1) when empty.
fn local_ip(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        Some(DEFAULT_LOCAL_ADDRESS)
    } else {
        parse_ip(s)
    }
}

fn socket_text(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// A value from outside, quoted and cut for a log line.
fn shown(v: &str) -> String {
    format!("{:?}", truncate(v, 64))
}

/// FNV-1a, 64 bit: stable across builds and platforms.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Instance, PortSpec, build_with_proxies};
    use prost::Message;
    use xds_api::pb::envoy::config::cluster::v3::Cluster;
    use xds_api::pb::envoy::config::core::v3::{address, socket_address};
    use xds_api::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};

    fn service(id: &str, name: &str, ports: &[(u16, u16, &str)]) -> Instance {
        Instance {
            id: id.into(),
            name: name.into(),
            hostname: "h1".into(),
            ports: ports
                .iter()
                .map(|(port, sp, ip)| PortSpec {
                    port: *port,
                    service_port: *sp,
                    ip: ip.to_string(),
                })
                .collect(),
            proxy_mode: "http".into(),
            alive: true,
        }
    }

    fn catalog() -> Vec<Instance> {
        vec![
            service(
                "d1",
                "db",
                &[(5001, 10001, "10.0.0.1"), (5002, 10002, "10.0.0.1")],
            ),
            service(
                "d2",
                "db",
                &[(5003, 10001, "10.0.0.2"), (5004, 10002, "10.0.0.2")],
            ),
        ]
    }

    fn proxy(id: &str, upstreams: &[(&str, u16, &str, u16)]) -> SidecarProxy {
        SidecarProxy {
            id: format!("{id}-sidecar-proxy"),
            name: format!("{id}-sidecar-proxy"),
            address: "10.0.0.9".into(),
            port: 21000,
            destination_service_name: id.into(),
            destination_service_id: id.into(),
            local_service_address: "127.0.0.1".into(),
            local_service_port: 8080,
            upstreams: upstreams
                .iter()
                .map(|(name, dport, addr, port)| Upstream {
                    destination_name: name.to_string(),
                    destination_port: *dport,
                    local_bind_address: addr.to_string(),
                    local_bind_port: *port,
                })
                .collect(),
        }
    }

    fn of_type<'a>(rs: &'a [Resource], ty: &str) -> Vec<&'a Resource> {
        rs.iter().filter(|r| r.type_url.ends_with(ty)).collect()
    }

    fn named<'a>(rs: &'a [Resource], ty: &str, name: &str) -> &'a Resource {
        of_type(rs, ty)
            .into_iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {ty} {name}"))
    }

    /// The listener's `ip:port`.
    fn bound(l: &Listener) -> String {
        let Some(address::Address::SocketAddress(sa)) =
            l.address.as_ref().and_then(|a| a.address.as_ref())
        else {
            panic!("socket address")
        };
        let Some(socket_address::PortSpecifier::PortValue(port)) = sa.port_specifier else {
            panic!("port")
        };
        format!("{}:{port}", sa.address)
    }

    /// The listener's `ip:port` and its TcpProxy's cluster.
    fn tcp(r: &Resource) -> (String, String) {
        let l = Listener::decode(r.value.as_slice()).expect("listener");
        let f = &l.filter_chains[0].filters[0];
        assert_eq!(f.name, "envoy.filters.network.tcp_proxy");
        let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
            panic!("typed config")
        };
        let t = TcpProxy::decode(any.value.as_slice()).expect("tcp proxy");
        assert!(!t.stat_prefix.is_empty());
        (bound(&l), t.cluster)
    }

    fn endpoints(cla: &ClusterLoadAssignment) -> Vec<String> {
        cla.endpoints
            .iter()
            .flat_map(|l| &l.lb_endpoints)
            .filter_map(|e| match &e.host_identifier {
                Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => {
                    match ep.address.as_ref().and_then(|a| a.address.as_ref()) {
                        Some(address::Address::SocketAddress(sa)) => match sa.port_specifier {
                            Some(socket_address::PortSpecifier::PortValue(p)) => {
                                Some(format!("{}:{p}", sa.address))
                            }
                            _ => None,
                        },
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn public_listener_to_a_static_cluster() {
        let (rs, w) = build_with_proxies(&[], &[proxy("web", &[])], &Settings::default());
        assert!(w.is_empty(), "{w:?}");
        let name = "web-sidecar-proxy:public";
        assert_eq!(
            tcp(named(&rs, ".Listener", name)),
            ("10.0.0.9:21000".into(), name.into())
        );
        let c = Cluster::decode(named(&rs, ".Cluster", name).value.as_slice()).expect("cluster");
        assert_eq!(
            c.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32
            ))
        );
        assert!(c.eds_cluster_config.is_none());
        assert_eq!(
            endpoints(&c.load_assignment.expect("inline")),
            ["127.0.0.1:8080"]
        );
        assert!(
            of_type(&rs, ".ClusterLoadAssignment").is_empty(),
            "STATIC: no EDS"
        );
    }

    #[test]
    fn upstreams_use_the_destination_cluster() {
        let (rs, w) = build_with_proxies(
            &catalog(),
            &[proxy(
                "web",
                &[("db", 0, "", 9000), ("db", 10002, "::1", 9001)],
            )],
            &Settings::default(),
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            tcp(named(&rs, ".Listener", "web-sidecar-proxy:upstream:9000")),
            ("127.0.0.1:9000".into(), "db:10001".into()),
            "0 is the lowest ServicePort; an empty bind address is 127.0.0.1"
        );
        assert_eq!(
            tcp(named(&rs, ".Listener", "web-sidecar-proxy:upstream:9001")),
            ("::1:9001".into(), "db:10002".into())
        );
        // No extra clusters: the catalog's are used.
        assert_eq!(of_type(&rs, ".Cluster").len(), 3);
        // Clusters come before the listeners that use them.
        let first_listener = rs
            .iter()
            .position(|r| r.type_url.ends_with(".Listener"))
            .expect("listeners");
        assert!(
            rs[first_listener..]
                .iter()
                .all(|r| r.type_url.ends_with(".Listener"))
        );
    }

    #[test]
    fn missing_destination_gets_an_empty_cluster() {
        let (rs, w) = build_with_proxies(
            &catalog(),
            &[
                proxy(
                    "web",
                    &[
                        ("cache", 6379, "127.0.0.1", 9000),
                        ("search", 0, "127.0.0.1", 9001),
                        ("db", 10003, "127.0.0.1", 9002),
                    ],
                ),
                SidecarProxy {
                    port: 21001,
                    ..proxy("api", &[("cache", 6379, "127.0.0.2", 9000)])
                },
            ],
            &Settings::default(),
        );
        assert_eq!(
            w.len(),
            1,
            "only the missing ServicePort is reported: {w:?}"
        );
        for (listener, target) in [
            ("web-sidecar-proxy:upstream:9000", "cache:6379"),
            ("web-sidecar-proxy:upstream:9001", "search:0"),
            ("web-sidecar-proxy:upstream:9002", "db:10003"),
            ("api-sidecar-proxy:upstream:9000", "cache:6379"),
        ] {
            assert_eq!(tcp(named(&rs, ".Listener", listener)).1, target);
            let c =
                Cluster::decode(named(&rs, ".Cluster", target).value.as_slice()).expect("cluster");
            assert!(c.eds_cluster_config.is_some(), "EDS, as the catalog's");
            let cla = ClusterLoadAssignment::decode(
                named(&rs, ".ClusterLoadAssignment", target)
                    .value
                    .as_slice(),
            )
            .expect("cla");
            assert!(endpoints(&cla).is_empty());
        }
        assert_eq!(
            of_type(&rs, ".Cluster")
                .iter()
                .filter(|r| r.name == "cache:6379")
                .count(),
            1,
            "one empty cluster for both upstreams"
        );

        // The empty cluster is exactly the one the catalog makes once an instance is
        // there (with no endpoints): the listener and cluster do not change.
        let (later, _) = build_with_proxies(
            &[service("c1", "cache", &[(7000, 6379, "10.0.0.3")])],
            &[proxy("web", &[("cache", 6379, "127.0.0.1", 9000)])],
            &Settings::default(),
        );
        assert_eq!(
            named(&rs, ".Cluster", "cache:6379"),
            named(&later, ".Cluster", "cache:6379")
        );
    }

    #[test]
    fn conflicting_binds_keep_the_first() {
        let settings = Settings {
            bind_ip: "127.0.0.1".parse().expect("ip"),
            ..Settings::default()
        };
        let mut second = proxy("api", &[("db", 0, "127.0.0.1", 9000)]);
        second.address = "10.0.0.9".into(); // same public address and port as web's
        let (rs, w) = build_with_proxies(
            &catalog(),
            &[
                proxy(
                    "web",
                    &[
                        ("db", 0, "127.0.0.1", 10001),
                        ("db", 0, "127.0.0.1", 9000),
                        ("db", 0, "0.0.0.0", 9000),
                        ("db", 0, "127.0.0.2", 9000),
                    ],
                ),
                second,
            ],
            &settings,
        );
        assert_eq!(w.len(), 4, "{w:#?}");
        assert!(w[0].contains("listener db:10001"), "{}", w[0]);
        let listeners: Vec<(String, String)> = of_type(&rs, ".Listener")
            .iter()
            .map(|r| {
                let l = Listener::decode(r.value.as_slice()).expect("listener");
                (r.name.clone(), bound(&l))
            })
            .collect();
        let ours: Vec<&(String, String)> = listeners
            .iter()
            .filter(|(n, _)| n.contains("sidecar"))
            .collect();
        assert_eq!(ours.len(), 3, "{listeners:?}");
        assert_eq!(ours[1].0, "web-sidecar-proxy:upstream:9000");
        assert!(
            ours[2].0.starts_with("web-sidecar-proxy:upstream:9000~"),
            "same port, other address: a distinct, stable name: {}",
            ours[2].0
        );
        let addrs: BTreeSet<&String> = listeners.iter().map(|(_, a)| a).collect();
        assert_eq!(addrs.len(), listeners.len(), "every address once");
    }

    #[test]
    fn hostile_values_are_left_out() {
        let mut bad_id = proxy("web", &[("db", 0, "127.0.0.1", 9000)]);
        bad_id.id = "web\u{0}evil".into();
        let mut bad = proxy("api", &[("db\"x", 0, "127.0.0.1", 9000)]);
        bad.address = "envoy.example.com".into();
        bad.upstreams.push(Upstream {
            destination_name: "db".into(),
            destination_port: 0,
            local_bind_address: "localhost".into(),
            local_bind_port: 9001,
        });
        bad.upstreams.push(Upstream {
            destination_name: "db".into(),
            destination_port: 0,
            local_bind_address: "127.0.0.1".into(),
            local_bind_port: 0,
        });
        let mut bad_local = proxy("cache", &[]);
        bad_local.local_service_address = "127.0.0.1:1".into();
        let mut long = proxy("x", &[]);
        long.destination_service_name = "a".repeat(300);
        let (rs, w) = build_with_proxies(
            &catalog(),
            &[bad_id, bad, bad_local, long],
            &Settings::default(),
        );
        assert_eq!(w.len(), 7, "{w:#?}");
        assert!(
            w.iter().all(|w| w.len() < 300 && !w.contains('\0')),
            "{w:#?}"
        );
        assert!(
            rs.iter().all(|r| !r.name.contains("sidecar")),
            "nothing added"
        );
    }

    #[test]
    fn crafted_catalog_names_do_not_take_sidecar_names() {
        // A service named like an upstream listener keeps its name; ours moves aside.
        let (rs, w) = build_with_proxies(
            &[service(
                "x",
                "web-sidecar-proxy:upstream",
                &[(1, 9000, "10.0.0.1")],
            )],
            &[proxy("web", &[("db", 10001, "127.0.0.1", 9000)])],
            &Settings::default(),
        );
        assert!(w.is_empty(), "{w:?}");
        let names: Vec<&str> = of_type(&rs, ".Listener")
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), 3, "{names:?}");
        assert_eq!(
            stat_prefix("web:1.x", "upstream", 9000),
            "sidecar_web_1_x_upstream_9000"
        );
    }

    #[test]
    fn use_hostnames_makes_the_empty_cluster_strict_dns() {
        let settings = Settings {
            use_hostnames: true,
            ..Settings::default()
        };
        let (rs, _) = build_with_proxies(
            &[],
            &[proxy("web", &[("cache", 6379, "127.0.0.1", 9000)])],
            &settings,
        );
        let c = Cluster::decode(named(&rs, ".Cluster", "cache:6379").value.as_slice())
            .expect("cluster");
        assert!(c.load_assignment.is_some());
        assert!(of_type(&rs, ".ClusterLoadAssignment").is_empty());
    }

    /// The resources (public STATIC cluster, upstream listeners, an empty cluster for a
    /// missing destination) pass a real Envoy's `--mode validate`, loaded as static
    /// resources next to an ADS source for the EDS clusters. Envoy is found through
    /// `$ENVOY_BIN`, the workspace's `target/tools/envoy` or `PATH`; skipped with a note
    /// when there is none.
    #[test]
    fn envoy_accepts_sidecar_resources() {
        use xds_api::pb::envoy::config::bootstrap::v3::{Bootstrap, bootstrap};
        use xds_api::pb::envoy::config::core::v3::{
            ApiConfigSource, ApiVersion, GrpcService, Http2ProtocolOptions, Node,
            api_config_source, grpc_service,
        };

        // `scripts/setup.sh` installs Envoy into the workspace's target/tools, which is
        // not on PATH: look there too, so CI runs this test instead of skipping it.
        let installed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tools/envoy");
        let bin = std::env::var("ENVOY_BIN").unwrap_or_else(|_| {
            if std::path::Path::new(installed).exists() {
                installed.into()
            } else {
                "envoy".into()
            }
        });
        if std::process::Command::new(&bin)
            .arg("--version")
            .output()
            .is_err()
        {
            println!("note: no Envoy ({bin}); skipping `envoy --mode validate`");
            return;
        }
        let settings = Settings {
            bind_ip: "127.0.0.2".parse().expect("ip"),
            ..Settings::default()
        };
        let (rs, w) = build_with_proxies(
            &catalog(),
            &[proxy(
                "web",
                &[
                    ("db", 0, "127.0.0.1", 9000),
                    ("db", 10002, "::1", 9000),
                    ("cache", 0, "127.0.0.1", 9001),
                ],
            )],
            &settings,
        );
        assert!(w.is_empty(), "{w:?}");
        let mut clusters: Vec<Cluster> = of_type(&rs, ".Cluster")
            .iter()
            .map(|r| Cluster::decode(r.value.as_slice()).expect("cluster"))
            .collect();
        let xds_cla = assignment("sidecar_xds", &[("127.0.0.1".into(), 7776)]);
        let mut xds = resources::cluster("sidecar_xds", &settings, xds_cla.clone());
        xds.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        ));
        xds.eds_cluster_config = None;
        xds.load_assignment = Some(xds_cla);
        #[allow(deprecated)]
        {
            xds.http2_protocol_options = Some(Http2ProtocolOptions::default());
        }
        clusters.push(xds);
        let bootstrap = Bootstrap {
            node: Some(Node {
                id: "test".into(),
                cluster: "test".into(),
                ..Default::default()
            }),
            static_resources: Some(bootstrap::StaticResources {
                listeners: of_type(&rs, ".Listener")
                    .iter()
                    .map(|r| Listener::decode(r.value.as_slice()).expect("listener"))
                    .collect(),
                clusters,
                ..Default::default()
            }),
            dynamic_resources: Some(bootstrap::DynamicResources {
                ads_config: Some(ApiConfigSource {
                    api_type: api_config_source::ApiType::Grpc as i32,
                    transport_api_version: ApiVersion::V3 as i32,
                    grpc_services: vec![GrpcService {
                        target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                            grpc_service::EnvoyGrpc {
                                cluster_name: "sidecar_xds".into(),
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let path =
            std::env::temp_dir().join(format!("proxy-envoy-sidecar-{}.pb", std::process::id()));
        std::fs::write(&path, bootstrap.encode_to_vec()).expect("write");
        let out = std::process::Command::new(&bin)
            .args(["--mode", "validate", "--log-level", "warn", "-c"])
            .arg(&path)
            .output()
            .expect("envoy runs");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "envoy refused:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
