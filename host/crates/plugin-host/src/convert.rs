//! Conversions between the catalog's Rust types and the WIT records.

use super::api::{ContainerInfo, ContainerPort};
use super::host_imports::types as wit;
use sidecar_catalog::{Port, PortKind, Service, Status, Timestamp};

pub(crate) fn timestamp(t: Timestamp) -> wit::Timestamp {
    let (seconds, nanoseconds) = t.to_parts();
    wit::Timestamp {
        seconds,
        nanoseconds,
    }
}

pub(crate) fn timestamp_from(t: wit::Timestamp) -> Timestamp {
    Timestamp::from_parts(t.seconds, t.nanoseconds)
}

fn port_kind(k: PortKind) -> wit::PortKind {
    match k {
        PortKind::Tcp => wit::PortKind::Tcp,
        PortKind::Udp => wit::PortKind::Udp,
    }
}

fn port_kind_from(k: wit::PortKind) -> PortKind {
    match k {
        wit::PortKind::Tcp => PortKind::Tcp,
        wit::PortKind::Udp => PortKind::Udp,
    }
}

pub(crate) fn status(s: Status) -> wit::ServiceStatus {
    match s {
        Status::Alive => wit::ServiceStatus::Alive,
        Status::Tombstone => wit::ServiceStatus::Tombstone,
        Status::Unhealthy => wit::ServiceStatus::Unhealthy,
        Status::Unknown => wit::ServiceStatus::Unknown,
        Status::Draining => wit::ServiceStatus::Draining,
    }
}

fn status_from(s: wit::ServiceStatus) -> Status {
    match s {
        wit::ServiceStatus::Alive => Status::Alive,
        wit::ServiceStatus::Tombstone => Status::Tombstone,
        wit::ServiceStatus::Unhealthy => Status::Unhealthy,
        wit::ServiceStatus::Unknown => Status::Unknown,
        wit::ServiceStatus::Draining => Status::Draining,
    }
}

pub(crate) fn service(s: &Service) -> wit::Service {
    wit::Service {
        id: s.id.clone(),
        name: s.name.clone(),
        image: s.image.clone(),
        created: timestamp(s.created),
        hostname: s.hostname.clone(),
        ports: s
            .ports
            .iter()
            .map(|p| wit::Port {
                kind: port_kind(p.kind),
                port: p.port,
                service_port: p.service_port,
                ip: p.ip.clone(),
            })
            .collect(),
        updated: timestamp(s.updated),
        proxy_mode: s.proxy_mode.clone(),
        status: status(s.status),
    }
}

pub(crate) fn service_from(s: wit::Service) -> Service {
    Service {
        id: s.id,
        name: s.name,
        image: s.image,
        created: timestamp_from(s.created),
        hostname: s.hostname,
        ports: s
            .ports
            .into_iter()
            .map(|p| Port {
                kind: port_kind_from(p.kind),
                port: p.port,
                service_port: p.service_port,
                ip: p.ip,
            })
            .collect(),
        updated: timestamp_from(s.updated),
        proxy_mode: s.proxy_mode,
        status: status_from(s.status),
    }
}

pub(crate) fn container(c: &ContainerInfo) -> wit::Container {
    wit::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        labels: c.labels.clone(),
        ports: c.ports.iter().map(container_port).collect(),
    }
}

fn container_port(p: &ContainerPort) -> wit::ContainerPort {
    wit::ContainerPort {
        kind: port_kind(p.kind),
        private_port: p.private_port,
        public_port: p.public_port,
        ip: p.ip.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_round_trips() {
        let s = Service {
            id: "abc".into(),
            name: "web".into(),
            image: "img:1".into(),
            created: Timestamp::GO_ZERO,
            hostname: "h".into(),
            ports: vec![Port {
                kind: PortKind::Udp,
                port: 1,
                service_port: 2,
                ip: "10.0.0.1".into(),
            }],
            updated: Timestamp::from_parts(1_700_000_000, 123_456_789),
            proxy_mode: "tcp".into(),
            status: Status::Draining,
        };
        assert_eq!(service_from(service(&s)), s);
        assert_eq!(timestamp(Timestamp::GO_ZERO).seconds, -62_135_596_800);
    }
}
