//! Envoy's deprecated v1 REST API as Sidecar serves it under `/v1`: SDS
//! (`/v1/registration/{name:port}`), CDS (`/v1/clusters`) and LDS (`/v1/listeners`),
//! with Sidecar's shapes, so an Envoy (or a script) still polling them keeps working
//! after the switch. Only ALIVE instances count; clusters and listeners come from the
//! oldest ALIVE instance of each service, as in Sidecar. New deployments use xDS v3
//! (`docs/proxies.md`).

use super::ApiContext;
use super::routes::{error, json};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde::Serialize;
use sidecar_catalog::{Service, ServicesState, Status};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the v1 API reads besides the catalog (Sidecar's `HAPROXY_BIND_IP` and
/// `HAPROXY_USE_HOSTNAMES`, as Sidecar uses them here).
#[derive(Debug, Clone)]
pub struct EnvoyV1 {
    /// The address listeners are put on.
    pub bind_ip: String,
    /// Resolve each instance's `Hostname` instead of using the port's IP (slow; for
    /// development setups, as in Sidecar).
    pub use_hostnames: bool,
}

impl Default for EnvoyV1 {
    fn default() -> Self {
        EnvoyV1 {
            bind_ip: "192.168.168.168".into(),
            use_hostnames: false,
        }
    }
}

pub fn routes() -> Router<ApiContext> {
    Router::new()
        .route("/v1/registration/{service}", get(registration))
        .route("/v1/clusters", get(clusters))
        .route("/v1/clusters/{cluster}/{node}", get(clusters))
        .route("/v1/listeners", get(listeners))
        .route("/v1/listeners/{cluster}/{node}", get(listeners))
}

/// One SDS host.
#[derive(Debug, Serialize, PartialEq)]
struct Host {
    ip_address: String,
    last_check_in: String,
    port: u16,
    revision: String,
    service: String,
    service_repo_name: String,
    tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Sds<'a> {
    env: &'a str,
    hosts: Vec<Host>,
    service: &'a str,
}

#[derive(Debug, Serialize, PartialEq)]
struct Cluster {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    connect_timeout_ms: u64,
    lb_type: &'static str,
    service_name: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct Listener {
    name: String,
    address: String,
    filters: Vec<Filter>,
}

#[derive(Debug, Serialize, PartialEq)]
struct Filter {
    name: &'static str,
    config: FilterConfig,
}

#[derive(Debug, Default, Serialize, PartialEq)]
struct FilterConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    codec_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stat_prefix: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route_config: Option<RouteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    filters: Vec<Filter>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
struct RouteConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    virtual_hosts: Vec<VirtualHost>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<TcpRoute>,
}

#[derive(Debug, Serialize, PartialEq)]
struct VirtualHost {
    name: String,
    domains: [&'static str; 1],
    routes: [HttpRoute; 1],
}

#[derive(Debug, Serialize, PartialEq)]
struct HttpRoute {
    timeout_ms: u64,
    prefix: &'static str,
    host_rewrite: &'static str,
    cluster: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct TcpRoute {
    cluster: String,
}

/// `name:port` (Sidecar's separator), the name of a cluster, listener and SDS service.
fn svc_name(name: &str, port: u16) -> String {
    format!("{name}:{port}")
}

/// Sidecar's split: the text before the first `:` and an integer after it (anything
/// after a second `:` is ignored, as Sidecar does).
fn split(name: &str) -> Result<(&str, i64), &'static str> {
    let mut parts = name.split(':');
    let (Some(svc), Some(port)) = (parts.next(), parts.next()) else {
        return Err("Unable to split service name and port!");
    };
    let port = port.parse().map_err(|_| "Unable to parse port!")?;
    Ok((svc, port))
}

fn to_json<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => json(StatusCode::OK, Bytes::from(body)),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
    }
}

/// `GET /v1/registration/{name:port}`: every ALIVE instance of `name` with a port of
/// that ServicePort (its first such port).
async fn registration(State(ctx): State<ApiContext>, Path(name): Path<String>) -> Response {
    let (svc, port) = match split(&name) {
        Ok(v) => v,
        Err(why) => return error(StatusCode::NOT_FOUND, &format!("Not Found - {why}")),
    };
    let snap = ctx.catalog.snapshot();
    let mut hosts = Vec::new();
    for s in snap.state.by_service().remove(svc).unwrap_or_default() {
        if s.status != Status::Alive {
            continue;
        }
        let Some(p) = s.ports.iter().find(|p| i64::from(p.service_port) == port) else {
            continue;
        };
        let mut ip = p.ip.clone();
        if ctx.envoy_v1.use_hostnames {
            match resolve(&s.hostname).await {
                Some(addr) => ip = addr,
                None => tracing::warn!(hostname = %s.hostname, "unable to resolve; using the IP"),
            }
        }
        hosts.push(Host {
            ip_address: ip,
            last_check_in: s.updated.to_go_string(),
            port: p.port,
            revision: s.version().to_string(),
            service: svc_name(&s.name, p.service_port),
            service_repo_name: s.image.clone(),
            tags: BTreeMap::new(),
        });
    }
    to_json(&Sds {
        env: &snap.state.cluster_name,
        hosts,
        service: &name,
    })
}

async fn resolve(hostname: &str) -> Option<String> {
    let lookup = tokio::net::lookup_host((hostname, 0));
    let mut addrs = tokio::time::timeout(Duration::from_secs(2), lookup)
        .await
        .ok()?
        .ok()?;
    addrs.next().map(|a| a.ip().to_string())
}

/// The oldest ALIVE instance of each service: what Sidecar takes a service's ports
/// and proxy mode from.
fn first_alive(state: &ServicesState) -> Vec<&Service> {
    state
        .by_service()
        .into_values()
        .filter_map(|list| list.into_iter().find(|s| s.status == Status::Alive))
        .collect()
}

fn cluster_list(state: &ServicesState) -> Vec<Cluster> {
    let mut out = Vec::new();
    for s in first_alive(state) {
        for p in s.ports.iter().filter(|p| p.service_port >= 1) {
            out.push(Cluster {
                name: svc_name(&s.name, p.service_port),
                kind: "sds",
                connect_timeout_ms: 500,
                lb_type: "round_robin",
                service_name: svc_name(&s.name, p.service_port),
            });
        }
    }
    out
}

fn listener(s: &Service, port: u16, bind_ip: &str) -> Listener {
    let name = svc_name(&s.name, port);
    let filter = if s.proxy_mode == "http" {
        Filter {
            name: "envoy.http_connection_manager",
            config: FilterConfig {
                codec_type: Some("auto"),
                stat_prefix: Some("ingress_http"),
                route_config: Some(RouteConfig {
                    virtual_hosts: vec![VirtualHost {
                        name: s.name.clone(),
                        domains: ["*"],
                        routes: [HttpRoute {
                            timeout_ms: 0,
                            prefix: "/",
                            host_rewrite: "",
                            cluster: name.clone(),
                        }],
                    }],
                    routes: Vec::new(),
                }),
                filters: vec![Filter {
                    name: "router",
                    config: FilterConfig::default(),
                }],
            },
        }
    } else {
        Filter {
            name: "envoy.tcp_proxy",
            config: FilterConfig {
                stat_prefix: Some("ingress_tcp"),
                route_config: Some(RouteConfig {
                    routes: vec![TcpRoute {
                        cluster: name.clone(),
                    }],
                    ..RouteConfig::default()
                }),
                ..FilterConfig::default()
            },
        }
    };
    Listener {
        name,
        address: format!("tcp://{bind_ip}:{port}"),
        filters: vec![filter],
    }
}

fn listener_list(state: &ServicesState, bind_ip: &str) -> Vec<Listener> {
    let mut out = Vec::new();
    for s in first_alive(state) {
        for p in s.ports.iter().filter(|p| p.service_port >= 1) {
            out.push(listener(s, p.service_port, bind_ip));
        }
    }
    out
}

/// `GET /v1/clusters[/{cluster}/{node}]` (the path parameters are ignored, as in
/// Sidecar).
async fn clusters(State(ctx): State<ApiContext>) -> Response {
    #[derive(Serialize)]
    struct Cds {
        clusters: Vec<Cluster>,
    }
    let snap = ctx.catalog.snapshot();
    to_json(&Cds {
        clusters: cluster_list(&snap.state),
    })
}

/// `GET /v1/listeners[/{cluster}/{node}]`.
async fn listeners(State(ctx): State<ApiContext>) -> Response {
    #[derive(Serialize)]
    struct Lds {
        listeners: Vec<Listener>,
    }
    let snap = ctx.catalog.snapshot();
    to_json(&Lds {
        listeners: listener_list(&snap.state, &ctx.envoy_v1.bind_ip),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sidecar_catalog::{Port, PortKind, Server, Timestamp};

    fn svc(
        id: &str,
        name: &str,
        mode: &str,
        status: Status,
        updated: &str,
        ports: &[(u16, u16)],
    ) -> Service {
        Service {
            id: id.into(),
            name: name.into(),
            image: format!("{name}:1.2"),
            hostname: format!("host-{id}"),
            proxy_mode: mode.into(),
            status,
            updated: Timestamp::parse_rfc3339(updated).expect("timestamp"),
            ports: ports
                .iter()
                .map(|&(port, service_port)| Port {
                    kind: PortKind::Tcp,
                    port,
                    service_port,
                    ip: "10.0.0.1".into(),
                })
                .collect(),
            ..Service::default()
        }
    }

    fn state(services: Vec<Service>) -> ServicesState {
        let mut st = ServicesState::new("me", "prod");
        for s in services {
            st.servers
                .entry(s.hostname.clone())
                .or_insert_with(|| Server::new(&s.hostname))
                .services
                .insert(s.id.clone(), s);
        }
        st
    }

    #[test]
    fn names_split_like_sidecar() {
        assert_eq!(split("web:80"), Ok(("web", 80)));
        assert_eq!(split("web:80:extra"), Ok(("web", 80)));
        assert_eq!(split("web"), Err("Unable to split service name and port!"));
        assert_eq!(split("web:x"), Err("Unable to parse port!"));
        assert_eq!(split("web:"), Err("Unable to parse port!"));
    }

    #[test]
    fn clusters_come_from_the_oldest_alive_instance_and_skip_unexposed_ports() {
        let st = state(vec![
            svc(
                "a",
                "web",
                "http",
                Status::Unhealthy,
                "2024-01-01T00:00:00Z",
                &[(1, 99)],
            ),
            svc(
                "b",
                "web",
                "http",
                Status::Alive,
                "2024-01-01T00:00:01Z",
                &[(8080, 80), (9000, 0)],
            ),
            svc(
                "c",
                "web",
                "http",
                Status::Alive,
                "2024-01-01T00:00:02Z",
                &[(8081, 81)],
            ),
            svc(
                "d",
                "db",
                "tcp",
                Status::Draining,
                "2024-01-01T00:00:00Z",
                &[(5432, 5432)],
            ),
        ]);
        let got = serde_json::to_value(cluster_list(&st)).expect("json");
        assert_eq!(
            got,
            json!([{"name":"web:80","type":"sds","connect_timeout_ms":500,"lb_type":"round_robin","service_name":"web:80"}])
        );
    }

    #[test]
    fn listeners_have_sidecars_http_and_tcp_shapes() {
        let st = state(vec![
            svc(
                "b",
                "bocaccio",
                "http",
                Status::Alive,
                "2024-01-01T00:00:01Z",
                &[(8080, 10100)],
            ),
            svc(
                "c",
                "x",
                "ws",
                Status::Alive,
                "2024-01-01T00:00:02Z",
                &[(8081, 10101)],
            ),
        ]);
        let got = serde_json::to_string(&listener_list(&st, "192.168.168.168")).expect("json");
        assert_eq!(
            got,
            concat!(
                r#"[{"name":"bocaccio:10100","address":"tcp://192.168.168.168:10100","filters":[{"name":"envoy.http_connection_manager","config":{"codec_type":"auto","stat_prefix":"ingress_http","route_config":{"virtual_hosts":[{"name":"bocaccio","domains":["*"],"routes":[{"timeout_ms":0,"prefix":"/","host_rewrite":"","cluster":"bocaccio:10100"}]}]},"filters":[{"name":"router","config":{}}]}}]},"#,
                r#"{"name":"x:10101","address":"tcp://192.168.168.168:10101","filters":[{"name":"envoy.tcp_proxy","config":{"stat_prefix":"ingress_tcp","route_config":{"routes":[{"cluster":"x:10101"}]}}}]}]"#
            )
        );
    }
}
