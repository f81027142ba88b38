//! The catalog grouped the way Sidecar's HAProxy template sees it (§7.2 of the
//! behaviour reference), plus the fixes that keep the output a valid config:
//! one owner per ServicePort, addresses that cannot inject config lines, a defined
//! mode for every ProxyMode.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One catalog record, as the emitter receives it (independent of the WIT bindings so
/// the grouping is testable natively).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub image: String,
    pub hostname: String,
    pub ports: Vec<PortSpec>,
    pub proxy_mode: String,
    /// `alive`, `tombstone`, `unhealthy`, `unknown` or `draining`.
    pub status: String,
    /// RFC 3339 (for templates that want to show it).
    pub updated: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PortSpec {
    /// `tcp` or `udp`.
    #[serde(rename = "type")]
    pub kind: String,
    pub port: u16,
    pub service_port: u16,
    pub ip: String,
}

/// A `server` line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Server {
    /// `<Hostname>-<ID>`, unique in its backend (see [`server_name`]).
    pub name: String,
    /// The port's IP (a literal), or the instance's hostname with `use-hostnames`.
    pub address: String,
    /// `init-addr` methods for an address that is a name (`last,libc,none`: a name
    /// that does not resolve leaves the server down instead of failing the config);
    /// empty for a literal IP.
    pub init_addr: String,
    pub port: u16,
    /// `<Hostname>-<Port>`.
    pub cookie: String,
    pub hostname: String,
    pub id: String,
    pub image: String,
}

/// One ServicePort of a service: a frontend and a backend named `<sanitized>-<port>`.
#[derive(Debug, Clone, Serialize)]
pub struct Listen {
    pub name: String,
    pub service_port: u16,
    pub servers: Vec<Server>,
}

/// One service name.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceGroup {
    pub name: String,
    pub sanitized: String,
    /// `http` or `tcp`: what HAProxy's `mode` accepts.
    pub mode: String,
    /// The ProxyMode as the catalog has it.
    pub proxy_mode: String,
    pub ports: Vec<Listen>,
    /// The accepted (ALIVE, matching) instances, oldest first.
    pub instances: Vec<Instance>,
}

/// The grouping and the warnings it produced (the caller logs them).
#[derive(Debug, Default)]
pub struct Grouped {
    pub services: Vec<ServiceGroup>,
    pub warnings: Vec<String>,
}

/// Sidecar's `sanitizeName`: every character outside `[a-z0-9-]` becomes `-`.
pub fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect()
}

/// HAProxy's `mode` for a ProxyMode: `http` and `ws` proxy as http; an empty mode
/// (static files that leave it out) as http, Sidecar's Docker default; anything else
/// as tcp, which carries any protocol. Sidecar wrote the value through and produced a
/// config HAProxy refused.
pub fn haproxy_mode(proxy_mode: &str) -> (&'static str, bool) {
    match proxy_mode.trim().to_ascii_lowercase().as_str() {
        "http" | "ws" | "" => ("http", true),
        "tcp" => ("tcp", true),
        _ => ("tcp", false),
    }
}

/// True for a string that can stand as one token in haproxy.cfg: it cannot end the
/// line, start a comment or split into two arguments. Catalog data comes from the
/// network; this keeps a hostile record from injecting configuration.
pub fn is_safe_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
}

/// Server and cookie names: anything outside HAProxy's identifier characters becomes `-`.
fn identifier(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// An IPv4 or IPv6 address (IPv6 possibly in brackets): nothing to resolve.
pub fn is_ip_literal(s: &str) -> bool {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>().is_ok()
}

/// FNV-1a (64 bit) over the raw Hostname and ID: stable across builds and platforms.
fn name_hash(host: &str, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host.bytes().chain([0]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A `server` name unique in its backend (`used` holds the names taken so far).
///
/// Sidecar's `<Hostname>-<ID>` when that is already a valid identifier and free, so
/// ordinary instances keep their names. When sanitising changed it (`a b` and `a-b`
/// would both give `h-a-b`) or the name is taken (`a-b` + `c` and `a` + `b-c`), a short
/// hash of the raw Hostname and ID is appended, then a counter if even that is taken
/// (a record can be crafted to look like another's hashed name).
pub fn server_name(host: &str, id: &str, used: &mut BTreeSet<String>) -> String {
    let raw = format!("{host}-{id}");
    let base = identifier(&raw);
    let hashed = format!("{base}-{:08x}", name_hash(host, id) >> 32);
    let mut name = if base == raw { base } else { hashed.clone() };
    let mut n = 2;
    while used.contains(&name) {
        name = if used.contains(&hashed) {
            format!("{hashed}-{n}")
        } else {
            hashed.clone()
        };
        n += 1;
    }
    used.insert(name.clone());
    name
}

/// The address for `host:port`: IPv6 literals in brackets.
fn address(ip: &str) -> String {
    if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

fn exported_service_ports(inst: &Instance) -> Vec<u16> {
    let mut ports: Vec<u16> = inst
        .ports
        .iter()
        .filter(|p| p.service_port != 0)
        .map(|p| p.service_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Groups ALIVE instances by name as Sidecar's template data does.
///
/// `instances` must be sorted by `Updated`, oldest first (the emitter contract). Per
/// name, the first accepted instance fixes the set of ServicePorts; later instances with
/// a different set are skipped with a warning (Sidecar crashed on some of these). A
/// ServicePort already claimed by an older service name is left to it, so two
/// frontends never bind one port.
pub fn group(instances: &[Instance], use_hostnames: bool) -> Grouped {
    let mut out = Grouped::default();
    // name -> (service ports of the first instance, accepted instances)
    let mut by_name: BTreeMap<&str, (Vec<u16>, Vec<&Instance>)> = BTreeMap::new();
    // Names in order of their first accepted instance (oldest first): port ownership.
    let mut first_seen: Vec<&str> = Vec::new();
    for inst in instances {
        if inst.status != "alive" || inst.ports.is_empty() {
            continue;
        }
        if !is_safe_token(&sanitize_name(&inst.name)) {
            out.warnings.push(format!(
                "skipping service with an empty name (id {:?})",
                inst.id
            ));
            continue;
        }
        let ports = exported_service_ports(inst);
        match by_name.get_mut(inst.name.as_str()) {
            Some((expected, accepted)) => {
                if *expected == ports {
                    accepted.push(inst);
                } else {
                    out.warnings.push(format!(
                        "service {} instance {} on {} exports ports {:?}, not {:?} like the oldest instance: left out",
                        inst.name, inst.id, inst.hostname, ports, expected
                    ));
                }
            }
            None => {
                first_seen.push(&inst.name);
                by_name.insert(&inst.name, (ports, vec![inst]));
            }
        }
    }

    // ServicePort -> owning service name (the one whose oldest instance is oldest).
    let mut owner: BTreeMap<u16, &str> = BTreeMap::new();
    for name in &first_seen {
        let (ports, _) = &by_name[name];
        for p in ports {
            match owner.get(p) {
                Some(existing) => out.warnings.push(format!(
                    "service {name} also claims ServicePort {p}, which {existing} already owns: left out"
                )),
                None => {
                    owner.insert(*p, name);
                }
            }
        }
    }

    for (name, (service_ports, accepted)) in &by_name {
        let sanitized = sanitize_name(name);
        let proxy_mode = accepted[0].proxy_mode.clone();
        let (mode, known) = haproxy_mode(&proxy_mode);
        if !known {
            out.warnings.push(format!(
                "service {name} has ProxyMode {proxy_mode:?}; proxying it in tcp mode"
            ));
        }
        let mut listens = Vec::new();
        for sp in service_ports {
            if owner.get(sp) != Some(name) {
                continue;
            }
            let mut servers = Vec::new();
            let mut used = BTreeSet::new();
            for inst in accepted {
                // Sidecar's getPorts only lists tcp ports.
                let Some(port) = inst
                    .ports
                    .iter()
                    .find(|p| p.service_port == *sp && p.kind == "tcp")
                else {
                    continue;
                };
                // Literal IPs only, unless names are asked for: a name that does not
                // resolve would fail the whole config.
                let host = if use_hostnames {
                    inst.hostname.as_str()
                } else {
                    port.ip.as_str()
                };
                let usable = if use_hostnames {
                    is_safe_token(host)
                } else {
                    is_ip_literal(host)
                };
                if !usable || port.port == 0 {
                    out.warnings.push(format!(
                        "service {name} instance {} has no usable address ({host:?}:{}): left out",
                        inst.id, port.port
                    ));
                    continue;
                }
                let init_addr = if is_ip_literal(host) {
                    ""
                } else {
                    "last,libc,none"
                };
                servers.push(Server {
                    name: server_name(&inst.hostname, &inst.id, &mut used),
                    address: address(host),
                    init_addr: init_addr.to_string(),
                    port: port.port,
                    cookie: identifier(&format!("{}-{}", inst.hostname, port.port)),
                    hostname: inst.hostname.clone(),
                    id: inst.id.clone(),
                    image: inst.image.clone(),
                });
            }
            if accepted.iter().all(|i| {
                !i.ports
                    .iter()
                    .any(|p| p.service_port == *sp && p.kind == "tcp")
            }) {
                // A udp-only ServicePort: HAProxy does not proxy udp.
                continue;
            }
            listens.push(Listen {
                name: format!("{sanitized}-{sp}"),
                service_port: *sp,
                servers,
            });
        }
        out.services.push(ServiceGroup {
            name: name.to_string(),
            sanitized,
            mode: mode.to_string(),
            proxy_mode,
            ports: listens,
            instances: accepted.iter().map(|i| (*i).clone()).collect(),
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn inst(id: &str, name: &str, host: &str, ports: &[(u16, u16, &str)]) -> Instance {
        Instance {
            id: id.into(),
            name: name.into(),
            image: format!("{name}:1"),
            hostname: host.into(),
            ports: ports
                .iter()
                .map(|(port, sp, ip)| PortSpec {
                    kind: "tcp".into(),
                    port: *port,
                    service_port: *sp,
                    ip: ip.to_string(),
                })
                .collect(),
            proxy_mode: "http".into(),
            status: "alive".into(),
            updated: String::new(),
        }
    }

    #[test]
    fn sanitizes_like_sidecar() {
        assert_eq!(sanitize_name("My_Service.v2"), "-y--ervice-v2");
        assert_eq!(sanitize_name("web-1"), "web-1");
    }

    #[test]
    fn groups_alive_instances_by_name_and_port() {
        let mut sick = inst("c", "web", "h3", &[(9003, 10000, "10.0.0.3")]);
        sick.status = "unhealthy".into();
        let g = group(
            &[
                inst("a", "web", "h1", &[(9001, 10000, "10.0.0.1")]),
                inst("b", "web", "h2", &[(9002, 10000, "10.0.0.2")]),
                sick,
            ],
            false,
        );
        assert_eq!(g.services.len(), 1);
        let l = &g.services[0].ports[0];
        assert_eq!(l.name, "web-10000");
        assert_eq!(
            l.servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["h1-a", "h2-b"]
        );
        assert_eq!(l.servers[0].cookie, "h1-9001");
        assert_eq!(l.servers[0].address, "10.0.0.1");
    }

    #[test]
    fn mismatched_port_sets_are_skipped_not_fatal() {
        let g = group(
            &[
                inst(
                    "a",
                    "web",
                    "h1",
                    &[(1, 10000, "10.0.0.1"), (2, 10001, "10.0.0.1")],
                ),
                inst("b", "web", "h2", &[(3, 10000, "10.0.0.2")]),
            ],
            false,
        );
        assert_eq!(g.services[0].instances.len(), 1);
        assert_eq!(g.warnings.len(), 1);
    }

    #[test]
    fn older_service_keeps_a_contested_port() {
        let g = group(
            &[
                inst("a", "old", "h1", &[(1, 10000, "10.0.0.1")]),
                inst(
                    "b",
                    "new",
                    "h1",
                    &[(2, 10000, "10.0.0.1"), (3, 10001, "10.0.0.1")],
                ),
            ],
            false,
        );
        let new = g.services.iter().find(|s| s.name == "new").expect("new");
        assert_eq!(
            new.ports.iter().map(|p| p.service_port).collect::<Vec<_>>(),
            [10001]
        );
        let old = g.services.iter().find(|s| s.name == "old").expect("old");
        assert_eq!(old.ports[0].service_port, 10000);
    }

    #[test]
    fn hostile_addresses_are_left_out() {
        let g = group(
            &[inst(
                "a",
                "web",
                "h1",
                &[(1, 10000, "10.0.0.1\n  server x 1.2.3.4:80")],
            )],
            false,
        );
        assert!(g.services[0].ports[0].servers.is_empty());
        assert_eq!(g.warnings.len(), 1);
    }

    #[test]
    fn hostnames_replace_ips_when_asked() {
        let g = group(&[inst("a", "web", "h1", &[(1, 10000, "10.0.0.1")])], true);
        let server = &g.services[0].ports[0].servers[0];
        assert_eq!(server.address, "h1");
        assert_eq!(server.init_addr, "last,libc,none");
        let g = group(&[inst("a", "web", "h1", &[(1, 10000, "10.0.0.1")])], false);
        assert_eq!(g.services[0].ports[0].servers[0].init_addr, "");
    }

    #[test]
    fn names_are_literal_ips_unless_hostnames() {
        let g = group(
            &[
                inst("a", "web", "h1", &[(1, 10000, "nonexistent.invalid")]),
                inst("b", "web", "h1", &[(2, 10000, "")]),
                inst("c", "web", "h1", &[(3, 10000, "::1")]),
            ],
            false,
        );
        let servers = &g.services[0].ports[0].servers;
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].address, "[::1]");
        assert_eq!(g.warnings.len(), 2);
    }

    #[test]
    fn server_names_are_unique_and_ordinary_ones_unchanged() {
        let g = group(
            &[
                inst("a b", "web", "h1", &[(1, 10000, "10.0.0.1")]),
                inst("a-b", "web", "h1", &[(2, 10000, "10.0.0.2")]),
                inst("b-c", "web", "h1-a", &[(3, 10000, "10.0.0.3")]),
                inst("a-b-c", "web", "h1", &[(4, 10000, "10.0.0.4")]),
                inst(
                    "deadbeef105",
                    "web",
                    "indefatigable",
                    &[(5, 10000, "10.0.0.5")],
                ),
            ],
            false,
        );
        let names: Vec<&str> = g.services[0].ports[0]
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), 5, "{names:?}");
        assert!(names[0].starts_with("h1-a-b-") && names[0].len() == "h1-a-b-".len() + 8);
        assert_eq!(names[1], "h1-a-b", "an ordinary ID keeps Sidecar's name");
        assert_eq!(names[2], "h1-a-b-c");
        assert!(names[3].starts_with("h1-a-b-c-"), "taken: hashed");
        assert_eq!(names[4], "indefatigable-deadbeef105");

        // A name crafted to equal another's hashed name still gets its own.
        let mut used = BTreeSet::new();
        let first = server_name("h", "x y", &mut used);
        let crafted_id = first.trim_start_matches("h-").to_string();
        let second = server_name("h", &crafted_id, &mut used);
        let third = server_name("h", &crafted_id, &mut used);
        assert_eq!(used.len(), 3, "{first} {second} {third}");
    }

    #[test]
    fn modes() {
        assert_eq!(haproxy_mode("ws"), ("http", true));
        assert_eq!(haproxy_mode(""), ("http", true));
        assert_eq!(haproxy_mode("TCP"), ("tcp", true));
        assert_eq!(haproxy_mode("grpc"), ("tcp", false));
    }
}
