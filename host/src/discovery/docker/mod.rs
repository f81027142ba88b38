//! Docker discovery (bollard): running containers become local services.
//!
//! Container `start`/`die`/`stop`/`destroy` events act at once (a dying container is
//! dropped before the engine is even asked again); a full listing every
//! [`DockerConfig::resync`] is the safety net. When the engine cannot be reached the
//! last list is kept (health checks still tell whether the services answer) and the
//! connection is retried with backoff; Sidecar instead let every record expire after
//! 80 s, so a Docker daemon restart emptied the cluster of this host's services.

pub mod labels;

use super::config::DockerEndpoint;
use super::{LocalService, Origin, SourceHandle};
use bollard::Docker;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt;
use sidecar_catalog::PortKind;
use sidecar_plugin_host::{ContainerInfo, ContainerPort, Namer};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// `SIDECAR_DOCKER_RESYNC` (default 5s): full listing interval.
    pub resync: Duration,
}

const API_TIMEOUT_SECS: u64 = 30;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn connect(endpoint: &DockerEndpoint) -> Result<Docker, bollard::errors::Error> {
    match endpoint {
        DockerEndpoint::Defaults => Docker::connect_with_defaults(),
        DockerEndpoint::Url(u) if u.starts_with("unix://") => {
            Docker::connect_with_unix(u, API_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
        DockerEndpoint::Url(u) => {
            Docker::connect_with_http(u, API_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
    }
}

/// Container info as the namer sees it, plus Docker's creation time.
fn container_info(c: &bollard::models::ContainerSummary) -> Option<(ContainerInfo, i64)> {
    let id = c.id.clone()?;
    let ports = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let kind = match p.typ {
                Some(bollard::models::PortTypeEnum::UDP) => PortKind::Udp,
                Some(bollard::models::PortTypeEnum::TCP)
                | None
                | Some(bollard::models::PortTypeEnum::EMPTY) => PortKind::Tcp,
                Some(_) => return None,
            };
            Some(ContainerPort {
                kind,
                private_port: p.private_port,
                public_port: p.public_port.unwrap_or(0),
                ip: p.ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    let mut labels: Vec<(String, String)> = c
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.sort();
    Some((
        ContainerInfo {
            id,
            name: c
                .names
                .as_ref()
                .and_then(|n| n.first().cloned())
                .unwrap_or_default(),
            image: c.image.clone().unwrap_or_default(),
            labels,
            ports,
        },
        c.created.unwrap_or(0),
    ))
}

struct Discoverer {
    namer: Arc<dyn Namer>,
    hostname: String,
    advertise_ip: String,
    /// Names by full container ID: the namer runs once per container.
    names: HashMap<String, String>,
    /// Containers whose label problems were already reported.
    reported: HashSet<String>,
    current: Vec<LocalService>,
}

impl Discoverer {
    async fn list(&mut self, docker: &Docker) -> Result<Vec<LocalService>, bollard::errors::Error> {
        let opts = ListContainersOptions {
            all: false,
            ..Default::default()
        };
        let containers = docker.list_containers(Some(opts)).await?;
        let mut out = Vec::with_capacity(containers.len());
        let mut ids = HashSet::new();
        for c in &containers {
            let Some((info, created)) = container_info(c) else {
                continue;
            };
            ids.insert(info.id.clone());
            if !labels::discoverable(&info) {
                continue;
            }
            let name = match self.names.get(&info.id) {
                Some(n) => n.clone(),
                None => {
                    let n = match self.namer.name(&info).await {
                        Ok(n) if !n.is_empty() => n,
                        Ok(_) => info.image.clone(),
                        Err(e) => {
                            tracing::warn!(container = %info.name, "namer failed, using the image name: {e}");
                            info.image.clone()
                        }
                    };
                    self.names.insert(info.id.clone(), n.clone());
                    n
                }
            };
            let (svc, errors) =
                labels::to_service(&info, name, created, &self.hostname, &self.advertise_ip);
            if !errors.is_empty() && self.reported.insert(info.id.clone()) {
                for e in errors {
                    tracing::warn!("docker discovery: {e}");
                }
            }
            out.push(svc);
        }
        self.names.retain(|id, _| ids.contains(id));
        self.reported.retain(|id| ids.contains(id));
        Ok(out)
    }
}

/// Runs Docker discovery forever.
pub async fn run(
    cfg: DockerConfig,
    endpoint: DockerEndpoint,
    namer: Arc<dyn Namer>,
    origin: Origin,
    handle: SourceHandle,
) {
    let Origin {
        node: hostname,
        advertise_ip,
    } = origin;
    let mut d = Discoverer {
        namer,
        hostname,
        advertise_ip,
        names: HashMap::new(),
        reported: HashSet::new(),
        current: Vec::new(),
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        if let Err(e) = session(&cfg, &endpoint, &mut d, &handle).await {
            handle.fail_first(format!("Docker at {endpoint:?} unreachable: {e}"));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_millis(500);
        }
    }
}

/// One connection: events plus periodic listings, until something fails.
async fn session(
    cfg: &DockerConfig,
    endpoint: &DockerEndpoint,
    d: &mut Discoverer,
    handle: &SourceHandle,
) -> Result<(), bollard::errors::Error> {
    let docker = connect(endpoint)?.negotiate_version().await?;
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "event".to_string(),
            ["start", "die", "stop", "destroy", "unpause", "pause"]
                .map(String::from)
                .to_vec(),
        ),
    ]);
    let mut events = docker.events(Some(EventsOptions {
        filters: Some(filters),
        ..Default::default()
    }));
    d.current = d.list(&docker).await?;
    handle.publish(d.current.clone());
    tracing::info!(containers = d.current.len(), "docker discovery connected");
    let mut tick = tokio::time::interval(cfg.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = match ev {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                };
                let action = ev.action.as_deref().unwrap_or_default();
                let id = ev.actor.as_ref().and_then(|a| a.id.clone()).unwrap_or_default();
                tracing::debug!(%action, %id, "docker event");
                if matches!(action, "die" | "stop" | "destroy" | "pause") {
                    let short: String = id.chars().take(12).collect();
                    let before = d.current.len();
                    d.current.retain(|s| s.service.id != short);
                    if d.current.len() != before {
                        handle.publish(d.current.clone());
                    }
                }
            }
            _ = tick.tick() => {}
        }
        d.current = d.list(&docker).await?;
        handle.publish(d.current.clone());
    }
}
