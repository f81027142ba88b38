//! Sidecar proxies (static.json `Connect.SidecarService`, as in Consul) as HAProxy
//! listeners: a public frontend to the parent service on this host, and one frontend
//! per upstream to the destination's ALIVE instances.
//!
//! The values come from files anyone on the host can edit, so every one is checked
//! before it reaches the config: a proxy or upstream with an unusable value is left
//! out with a warning, and two listeners never bind one address and port (HAProxy
//! would accept the file and split the traffic between them).

use crate::model::{Server, ServiceGroup, is_ip_literal, is_safe_token};
use serde::Serialize;
use sidecar_plugin_sdk::truncate;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Where the host says a local address defaults to when static.json leaves it out.
const DEFAULT_LOCAL_ADDRESS: &str = "127.0.0.1";

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

/// One proxy's listeners, as templates see them.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyListeners {
    pub id: String,
    pub name: String,
    pub destination_service_name: String,
    pub destination_service_id: String,
    /// None when its values were unusable or its address and port were taken.
    pub public: Option<Listener>,
    pub upstreams: Vec<Listener>,
}

/// A frontend and its backend, both named `name`, in `mode tcp`.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// `<proxy ID>_public_<port>` or `<proxy ID>_upstream_<port>` (see [`Names`]).
    pub name: String,
    /// The bind address (IPv6 in brackets).
    pub address: String,
    pub port: u16,
    /// Public: the parent service. Upstream: the destination service.
    pub destination_name: String,
    /// Public: the parent's port. Upstream: the ServicePort it resolved to (0 while the
    /// destination has no ALIVE instance and the upstream asked for "the lowest").
    pub destination_port: u16,
    /// Public: the parent's address. Upstream: the servers of the destination's
    /// `<name>-<ServicePort>` backend (none while it has no ALIVE instance).
    pub servers: Vec<Server>,
}

/// An address and port already bound, to keep a second listener off it.
#[derive(Debug, Clone)]
pub struct Bind {
    /// As written after `bind` (`*` or empty: every address).
    pub host: String,
    pub port: u16,
    /// What holds it, for the warning.
    pub holder: String,
}

/// The listeners and the warnings for the log.
#[derive(Debug, Default)]
pub struct Resolved {
    pub proxies: Vec<ProxyListeners>,
    pub warnings: Vec<String>,
}

/// The listeners of `proxies` (in the host's order, by ID), given the grouped catalog
/// and the binds the rest of the config already holds (`taken`). The first claim of
/// an address and port wins: the service frontends, then each proxy's public listener
/// and its upstreams in order.
pub fn resolve(proxies: &[SidecarProxy], services: &[ServiceGroup], taken: Vec<Bind>) -> Resolved {
    let mut out = Resolved::default();
    let mut binds = Binds(taken);
    let mut names = Names::default();
    for p in proxies {
        if let Some(bad) = [
            ("ID", &p.id),
            ("name", &p.name),
            ("destination service name", &p.destination_service_name),
            ("destination service ID", &p.destination_service_id),
        ]
        .into_iter()
        .find(|(_, v)| !is_safe_token(v))
        {
            out.warnings.push(format!(
                "sidecar proxy {}: unusable {} {}: left out",
                shown(&p.id),
                bad.0,
                shown(bad.1)
            ));
            continue;
        }
        let mut listeners = ProxyListeners {
            id: p.id.clone(),
            name: p.name.clone(),
            destination_service_name: p.destination_service_name.clone(),
            destination_service_id: p.destination_service_id.clone(),
            public: None,
            upstreams: Vec::new(),
        };
        match public(p, &mut binds, &mut names) {
            Ok(l) => listeners.public = Some(l),
            Err(w) => out.warnings.push(w),
        }
        for u in &p.upstreams {
            match upstream(p, u, services, &mut binds, &mut names, &mut out.warnings) {
                Ok(l) => listeners.upstreams.push(l),
                Err(w) => out.warnings.push(w),
            }
        }
        out.proxies.push(listeners);
    }
    out
}

fn public(p: &SidecarProxy, binds: &mut Binds, names: &mut Names) -> Result<Listener, String> {
    let what = format!("sidecar proxy {} public listener", p.id);
    let local = or_default(&p.local_service_address);
    if !is_ip_literal(&p.address) || p.port == 0 {
        return Err(format!(
            "{what}: address {}:{} is not an IP literal and a port: left out",
            shown(&p.address),
            p.port
        ));
    }
    if !is_ip_literal(local) || p.local_service_port == 0 {
        return Err(format!(
            "{what}: local service address {}:{} is not an IP literal and a port: left out",
            shown(local),
            p.local_service_port
        ));
    }
    binds.claim(&p.address, p.port, &what)?;
    let name = names.claim(&p.id, "public", p.port, &p.address);
    Ok(Listener {
        name,
        address: bracketed(&p.address),
        port: p.port,
        destination_name: p.destination_service_name.clone(),
        destination_port: p.local_service_port,
        servers: vec![Server {
            name: "local".into(),
            address: bracketed(local),
            init_addr: String::new(),
            port: p.local_service_port,
            cookie: String::new(),
            hostname: String::new(),
            id: p.destination_service_id.clone(),
            image: String::new(),
        }],
    })
}

fn upstream(
    p: &SidecarProxy,
    u: &Upstream,
    services: &[ServiceGroup],
    binds: &mut Binds,
    names: &mut Names,
    warnings: &mut Vec<String>,
) -> Result<Listener, String> {
    let what = format!(
        "sidecar proxy {} upstream {}:{}",
        p.id,
        shown(&u.destination_name),
        u.destination_port
    );
    let bind = or_default(&u.local_bind_address);
    if !is_safe_token(&u.destination_name) {
        return Err(format!("{what}: unusable destination name: left out"));
    }
    if !is_ip_literal(bind) || u.local_bind_port == 0 {
        return Err(format!(
            "{what}: local bind {}:{} is not an IP literal and a port: left out",
            shown(bind),
            u.local_bind_port
        ));
    }
    binds.claim(bind, u.local_bind_port, &what)?;
    let (destination_port, servers) = destination(services, u, &what, warnings);
    Ok(Listener {
        name: names.claim(&p.id, "upstream", u.local_bind_port, bind),
        address: bracketed(bind),
        port: u.local_bind_port,
        destination_name: u.destination_name.clone(),
        destination_port,
        servers,
    })
}

/// The ServicePort an upstream reaches and the servers of the destination's backend
/// for it. A destination with no ALIVE instance has none yet (normal while it starts:
/// no warning); one without the requested ServicePort is a warning.
fn destination(
    services: &[ServiceGroup],
    u: &Upstream,
    what: &str,
    warnings: &mut Vec<String>,
) -> (u16, Vec<Server>) {
    let Some(group) = services.iter().find(|s| s.name == u.destination_name) else {
        return (u.destination_port, Vec::new());
    };
    // `ports` is ascending: the first is the lowest.
    let listen = if u.destination_port == 0 {
        group.ports.first()
    } else {
        group
            .ports
            .iter()
            .find(|l| l.service_port == u.destination_port)
    };
    match listen {
        Some(l) => (l.service_port, l.servers.clone()),
        None => {
            warnings.push(format!(
                "{what}: service {} has no proxied ServicePort {}; the listener has no server",
                u.destination_name, u.destination_port
            ));
            (u.destination_port, Vec::new())
        }
    }
}

/// A local address from the host, or its documented default when empty.
fn or_default(address: &str) -> &str {
    if address.is_empty() {
        DEFAULT_LOCAL_ADDRESS
    } else {
        address
    }
}

/// `addr` as HAProxy takes it before `:port`: IPv6 in brackets.
fn bracketed(addr: &str) -> String {
    if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

/// A value from outside, quoted and cut for a log line.
fn shown(v: &str) -> String {
    format!("{:?}", truncate(v, 64))
}

/// What an address binds to, for overlap checks.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    /// `*`, empty, `0.0.0.0`, `::`: every address of the host.
    Any,
    Ip(IpAddr),
    /// A name (a custom `bind-ip`): overlaps only the same name.
    Name(String),
}

impl Host {
    fn of(s: &str) -> Host {
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        match bare.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => Host::Any,
            Ok(ip) => Host::Ip(ip),
            Err(_) if bare.is_empty() || bare == "*" => Host::Any,
            Err(_) => Host::Name(bare.to_ascii_lowercase()),
        }
    }

    fn overlaps(&self, other: &Host) -> bool {
        matches!(self, Host::Any) || matches!(other, Host::Any) || self == other
    }
}

/// The binds so far. A wildcard overlaps every address: which socket would take a
/// connection is then up to the kernel, so it counts as a conflict too.
struct Binds(Vec<Bind>);

impl Binds {
    fn claim(&mut self, host: &str, port: u16, holder: &str) -> Result<(), String> {
        let h = Host::of(host);
        if let Some(b) = self
            .0
            .iter()
            .find(|b| b.port == port && Host::of(&b.host).overlaps(&h))
        {
            return Err(format!(
                "{holder}: {host}:{port} is already bound by {} (bind {}:{}): left out",
                b.holder, b.host, b.port
            ));
        }
        self.0.push(Bind {
            host: host.to_string(),
            port,
            holder: holder.to_string(),
        });
        Ok(())
    }
}

/// Frontend/backend names: `<proxy ID>_<kind>_<port>`, with HAProxy's identifier
/// characters only. The `_` keeps them apart from the `<name>-<ServicePort>` frontends
/// (sanitised names have none). Two upstreams of one proxy on one port (different
/// addresses) get a hash of the address appended, so names stay stable.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    fn claim(&mut self, id: &str, kind: &str, port: u16, address: &str) -> String {
        let id: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = format!("{id}_{kind}_{port}");
        let hashed = format!("{base}_{:08x}", fnv1a(address) >> 32);
        let mut name = base.clone();
        let mut n = 2;
        while self.0.contains(&name) {
            name = if n == 2 {
                hashed.clone()
            } else {
                format!("{hashed}_{n}")
            };
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
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
    use crate::model::{Instance, group};

    fn service(id: &str, name: &str, ports: &[(u16, u16, &str)]) -> Instance {
        crate::model::tests::inst(id, name, "h1", ports)
    }

    pub fn proxy(id: &str, upstreams: &[(&str, u16, &str, u16)]) -> SidecarProxy {
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

    fn catalog() -> Vec<ServiceGroup> {
        group(
            &[
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
            ],
            false,
        )
        .services
    }

    fn addresses(l: &Listener) -> Vec<String> {
        l.servers
            .iter()
            .map(|s| format!("{}:{}", s.address, s.port))
            .collect()
    }

    #[test]
    fn public_listener_forwards_to_the_local_service() {
        let r = resolve(&[proxy("web", &[])], &[], Vec::new());
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let public = r.proxies[0].public.as_ref().expect("public");
        assert_eq!(public.name, "web-sidecar-proxy_public_21000");
        assert_eq!((public.address.as_str(), public.port), ("10.0.0.9", 21000));
        assert_eq!(addresses(public), ["127.0.0.1:8080"]);
    }

    #[test]
    fn upstreams_resolve_the_destination_port() {
        let r = resolve(
            &[proxy(
                "web",
                &[("db", 0, "127.0.0.1", 9000), ("db", 10002, "", 9001)],
            )],
            &catalog(),
            Vec::new(),
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let ups = &r.proxies[0].upstreams;
        assert_eq!(ups[0].name, "web-sidecar-proxy_upstream_9000");
        assert_eq!(ups[0].destination_port, 10001, "0 is the lowest");
        assert_eq!(addresses(&ups[0]), ["10.0.0.1:5001", "10.0.0.2:5003"]);
        assert_eq!(ups[1].destination_port, 10002);
        assert_eq!(ups[1].address, "127.0.0.1", "empty is the default");
        assert_eq!(addresses(&ups[1]), ["10.0.0.1:5002", "10.0.0.2:5004"]);
    }

    #[test]
    fn missing_destination_or_port_gives_no_server() {
        let r = resolve(
            &[proxy(
                "web",
                &[("cache", 0, "127.0.0.1", 9000), ("db", 9999, "::1", 9001)],
            )],
            &catalog(),
            Vec::new(),
        );
        let ups = &r.proxies[0].upstreams;
        assert_eq!(ups.len(), 2);
        assert!(ups[0].servers.is_empty() && ups[0].destination_port == 0);
        assert!(ups[1].servers.is_empty());
        assert_eq!(ups[1].address, "[::1]");
        assert_eq!(r.warnings.len(), 1, "a missing port is reported");
    }

    #[test]
    fn conflicting_binds_keep_the_first() {
        let taken = vec![Bind {
            host: "127.0.0.1".into(),
            port: 10001,
            holder: "frontend db-10001".into(),
        }];
        let mut second = proxy("api", &[("db", 0, "127.0.0.1", 9000)]);
        second.port = 21000; // the same public address and port as the first
        let r = resolve(
            &[
                proxy(
                    "web",
                    &[
                        ("db", 0, "127.0.0.1", 10001),
                        ("db", 0, "127.0.0.1", 9000),
                        ("db", 10002, "0.0.0.0", 9000),
                        ("db", 0, "127.0.0.2", 9000),
                    ],
                ),
                second,
            ],
            &catalog(),
            taken,
        );
        let web = &r.proxies[0];
        assert_eq!(
            web.upstreams
                .iter()
                .map(|u| (u.address.as_str(), u.port))
                .collect::<Vec<_>>(),
            [("127.0.0.1", 9000), ("127.0.0.2", 9000)]
        );
        assert_eq!(web.upstreams[0].name, "web-sidecar-proxy_upstream_9000");
        assert!(
            web.upstreams[1]
                .name
                .starts_with("web-sidecar-proxy_upstream_9000_"),
            "same port, other address: a distinct, stable name"
        );
        let api = &r.proxies[1];
        assert!(api.public.is_none());
        assert!(api.upstreams.is_empty());
        assert_eq!(r.warnings.len(), 4, "{:#?}", r.warnings);
        assert!(
            r.warnings[0].contains("frontend db-10001"),
            "{}",
            r.warnings[0]
        );
    }

    #[test]
    fn wildcards_overlap_every_address() {
        let taken = vec![Bind {
            host: "*".into(),
            port: 9000,
            holder: "frontend x-9000".into(),
        }];
        let r = resolve(&[proxy("web", &[("db", 0, "127.0.0.1", 9000)])], &[], taken);
        assert!(r.proxies[0].upstreams.is_empty());
        assert!(Host::of("[::]").overlaps(&Host::of("10.0.0.1")));
        assert!(!Host::of("10.0.0.1").overlaps(&Host::of("10.0.0.2")));
        assert!(Host::of("[::1]").overlaps(&Host::of("::1")));
    }

    #[test]
    fn hostile_values_are_left_out() {
        let mut bad_id = proxy("web", &[]);
        bad_id.id = "web\n    server evil 1.2.3.4:80".into();
        let mut bad_address = proxy("api", &[("db\nx", 0, "127.0.0.1", 9000)]);
        bad_address.address = "10.0.0.9 ssl crt /etc/passwd".into();
        bad_address.upstreams.push(Upstream {
            destination_name: "db".into(),
            destination_port: 0,
            local_bind_address: "localhost".into(),
            local_bind_port: 9001,
        });
        bad_address.upstreams.push(Upstream {
            destination_name: "db".into(),
            destination_port: 0,
            local_bind_address: "127.0.0.1".into(),
            local_bind_port: 0,
        });
        let mut bad_local = proxy("cache", &[]);
        bad_local.local_service_address = "127.0.0.1:1 backup".into();
        let r = resolve(&[bad_id, bad_address, bad_local], &catalog(), Vec::new());
        assert_eq!(r.proxies.len(), 2, "the bad ID drops the whole proxy");
        assert!(r.proxies.iter().all(|p| p.public.is_none()));
        assert!(r.proxies[0].upstreams.is_empty());
        assert_eq!(r.warnings.len(), 6, "{:#?}", r.warnings);
        assert!(r.warnings.iter().all(|w| !w.contains('\n')), "quoted");
    }

    #[test]
    fn names_are_identifiers_and_unique() {
        let mut names = Names::default();
        assert_eq!(names.claim("a[b]", "public", 1, "::1"), "a-b-_public_1");
        let first = names.claim("x", "upstream", 2, "127.0.0.1");
        let second = names.claim("x", "upstream", 2, "127.0.0.2");
        let third = names.claim("x", "upstream", 2, "127.0.0.2");
        assert_eq!(first, "x_upstream_2");
        assert_ne!(second, third);
        assert!(third.starts_with(&second));
    }
}
