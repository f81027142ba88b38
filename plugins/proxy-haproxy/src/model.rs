//! The catalog grouped the way Sidecar's HAProxy template sees it (§7.2 of the
//! behaviour reference), plus the fixes that keep the output a valid config:
//! one owner per ServicePort, addresses that cannot inject config lines, a defined
//! mode for every ProxyMode.

use serde::Serialize;
use std::collections::BTreeMap;

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
    /// `<Hostname>-<ID>`.
    pub name: String,
    /// The port's IP, or the instance's hostname (`use-hostnames`, or no IP known).
    pub address: String,
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
            for inst in accepted {
                // Sidecar's getPorts only lists tcp ports.
                let Some(port) = inst
                    .ports
                    .iter()
                    .find(|p| p.service_port == *sp && p.kind == "tcp")
                else {
                    continue;
                };
                let host = if use_hostnames || port.ip.is_empty() {
                    inst.hostname.as_str()
                } else {
                    port.ip.as_str()
                };
                if !is_safe_token(host) || port.port == 0 {
                    out.warnings.push(format!(
                        "service {name} instance {} has no usable address ({host:?}:{}): left out",
                        inst.id, port.port
                    ));
                    continue;
                }
                servers.push(Server {
                    name: identifier(&format!("{}-{}", inst.hostname, inst.id)),
                    address: address(host),
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
mod tests {
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
        assert_eq!(g.services[0].ports[0].servers[0].address, "h1");
    }

    #[test]
    fn modes() {
        assert_eq!(haproxy_mode("ws"), ("http", true));
        assert_eq!(haproxy_mode(""), ("http", true));
        assert_eq!(haproxy_mode("TCP"), ("tcp", true));
        assert_eq!(haproxy_mode("grpc"), ("tcp", false));
    }
}
