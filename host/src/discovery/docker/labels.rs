//! Container -> service mapping, from the labels Sidecar reads:
//! `ServicePort_<private>=<port>`, `HealthCheck`, `HealthCheckArgs`, `ProxyMode`,
//! `SidecarDiscover=false`, `SidecarListener=<ServicePort>`. The name comes from the
//! namer plugin.

use crate::discovery::{LocalService, listener_url};
use sidecar_catalog::{Port, PortKind, Service, Timestamp};
use sidecar_plugin_host::{CheckSpec, ContainerInfo, ContainerPort};

/// A label problem on one container. Discovery of the container (and of every other)
/// goes on; the affected setting is left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container {container}: label {label}={value:?}: {reason}")]
pub struct LabelError {
    pub container: String,
    pub label: String,
    pub value: String,
    pub reason: String,
}

fn label<'a>(c: &'a ContainerInfo, key: &str) -> Option<&'a str> {
    c.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// True unless `SidecarDiscover=false` (exactly that string, as in Sidecar).
pub fn discoverable(c: &ContainerInfo) -> bool {
    label(c, "SidecarDiscover") != Some("false")
}

/// Maps a running container to a local service. `created` is Docker's Unix seconds.
pub fn to_service(
    c: &ContainerInfo,
    name: String,
    created: i64,
    hostname: &str,
    advertise_ip: &str,
) -> (LocalService, Vec<LabelError>) {
    let mut errors = Vec::new();
    let short: String = c.id.chars().take(12).collect();
    let err = |label: &str, value: &str, reason: String| LabelError {
        container: c.name.clone(),
        label: label.to_string(),
        value: value.to_string(),
        reason,
    };
    let mut ports: Vec<Port> = Vec::new();
    // Docker lists a mapping twice on dual-stack hosts (0.0.0.0 and ::), and since
    // Docker 28 the two may get different host ports. We advertise an IPv4 address, so
    // the IPv4 binding is the one peers can reach: an IPv6 binding of the same container
    // port is left out.
    let has_v4 = |p: &ContainerPort| {
        c.ports.iter().any(|q| {
            q.kind == p.kind
                && q.private_port == p.private_port
                && q.public_port != 0
                && !q.ip.contains(':')
        })
    };
    for p in c
        .ports
        .iter()
        .filter(|p| p.public_port != 0)
        .filter(|p| !p.ip.contains(':') || !has_v4(p))
    {
        let key = format!("ServicePort_{}", p.private_port);
        let service_port = match label(c, &key) {
            None => 0,
            Some(v) => match v.trim().parse::<u16>() {
                Ok(sp) => sp,
                Err(_) => {
                    let e = err(
                        &key,
                        v,
                        "not a port number; the port is not exported".into(),
                    );
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                    0
                }
            },
        };
        let ip = match p.ip.as_str() {
            "" | "0.0.0.0" | "::" => advertise_ip.to_string(),
            other => other.to_string(),
        };
        let port = Port {
            kind: p.kind,
            port: p.public_port,
            service_port,
            ip,
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    let proxy_mode = match label(c, "ProxyMode") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => "http".to_string(),
    };
    let check = label(c, "HealthCheck")
        .filter(|t| !t.is_empty())
        .map(|t| CheckSpec {
            check_type: t.to_string(),
            args: label(c, "HealthCheckArgs").unwrap_or_default().to_string(),
        });
    let mut listener = None;
    if let Some(v) = label(c, "SidecarListener") {
        match v.trim().parse::<u16>() {
            Ok(sp) => match ports
                .iter()
                .find(|p| p.kind == PortKind::Tcp && p.service_port == sp)
            {
                Some(p) => listener = Some(listener_url(&p.ip, p.port)),
                None => errors.push(err(
                    "SidecarListener",
                    v,
                    format!("no tcp port has ServicePort {sp}"),
                )),
            },
            Err(_) => errors.push(err("SidecarListener", v, "not a port number".into())),
        }
    }
    let service = Service {
        id: short,
        name,
        image: c.image.clone(),
        created: Timestamp::from_unix_secs(created),
        hostname: hostname.to_string(),
        ports,
        updated: Timestamp::GO_ZERO,
        proxy_mode,
        status: sidecar_catalog::Status::Unknown,
    };
    (
        LocalService {
            service,
            check_from_container: check.is_some(),
            check,
            listener,
            sidecar_proxy: None,
        },
        errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_host::ContainerPort;

    fn container(labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: "deadbeef1231aaaaaaaaaaaa".into(),
            name: "/beowulf".into(),
            image: "gonitro/awesome-svc:0.1.34".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: vec![
                ContainerPort {
                    kind: PortKind::Tcp,
                    private_port: 80,
                    public_port: 8080,
                    ip: "0.0.0.0".into(),
                },
                ContainerPort {
                    kind: PortKind::Tcp,
                    private_port: 80,
                    public_port: 8080,
                    ip: "::".into(),
                },
                ContainerPort {
                    kind: PortKind::Udp,
                    private_port: 53,
                    public_port: 5353,
                    ip: "127.0.0.1".into(),
                },
                ContainerPort {
                    kind: PortKind::Tcp,
                    private_port: 9000,
                    public_port: 0,
                    ip: String::new(),
                },
            ],
        }
    }

    #[test]
    fn sidecar_mapping() {
        let c = container(&[
            ("ServicePort_80", "8080"),
            ("HealthCheck", "HttpGet"),
            ("HealthCheckArgs", "http://{{ host }}:{{ tcp 8080 }}/"),
            ("SidecarListener", "8080"),
            ("ProxyMode", "tcp"),
        ]);
        let (l, errors) = to_service(&c, "beowulf".into(), 1457144774, "box", "10.0.0.1");
        assert!(errors.is_empty(), "{errors:?}");
        let s = &l.service;
        assert_eq!(s.id, "deadbeef1231");
        assert_eq!(s.created.to_rfc3339(), "2016-03-05T02:26:14Z");
        assert_eq!(s.proxy_mode, "tcp");
        assert_eq!(
            s.ports.len(),
            2,
            "v4/v6 duplicate merged, unpublished port skipped"
        );
        assert_eq!(
            s.ports[0],
            Port {
                kind: PortKind::Tcp,
                port: 8080,
                service_port: 8080,
                ip: "10.0.0.1".into()
            }
        );
        assert_eq!(s.ports[1].ip, "127.0.0.1", "a specific binding IP is kept");
        assert_eq!(
            l.check.as_ref().map(|c| c.check_type.as_str()),
            Some("HttpGet")
        );
        assert_eq!(
            l.listener.as_deref(),
            Some("http://10.0.0.1:8080/sidecar/update")
        );
    }

    #[test]
    fn an_ipv6_binding_on_another_host_port_is_left_out() {
        let mut c = container(&[]);
        c.ports = vec![
            ContainerPort {
                kind: PortKind::Tcp,
                private_port: 80,
                public_port: 32772,
                ip: "0.0.0.0".into(),
            },
            ContainerPort {
                kind: PortKind::Tcp,
                private_port: 80,
                public_port: 32771,
                ip: "::".into(),
            },
            ContainerPort {
                kind: PortKind::Tcp,
                private_port: 81,
                public_port: 32773,
                ip: "::".into(),
            },
        ];
        let (l, _) = to_service(&c, "n".into(), 0, "box", "10.0.0.1");
        let ports: Vec<(u16, &str)> = l
            .service
            .ports
            .iter()
            .map(|p| (p.port, p.ip.as_str()))
            .collect();
        assert_eq!(
            ports,
            vec![(32772, "10.0.0.1"), (32773, "10.0.0.1")],
            "an IPv6-only port stays"
        );
    }

    #[test]
    fn bad_labels_are_reported_and_skipped() {
        let c = container(&[("ServicePort_80", "eighty"), ("SidecarListener", "1234")]);
        let (l, errors) = to_service(&c, "x".into(), 0, "box", "10.0.0.1");
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].to_string().contains("ServicePort_80"),
            "{}",
            errors[0]
        );
        assert_eq!(l.service.ports[0].service_port, 0);
        assert_eq!(l.service.proxy_mode, "http");
        assert_eq!(l.listener, None);
    }

    #[test]
    fn sidecar_discover_false_hides_a_container() {
        assert!(!discoverable(&container(&[("SidecarDiscover", "false")])));
        assert!(discoverable(&container(&[("SidecarDiscover", "False")])));
    }
}
