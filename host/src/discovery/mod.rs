//! Local discovery: which services this host runs.
//!
//! Each source (static file, Docker, discovery-source plugins) runs as its own task and
//! publishes its *complete* current set on a `watch` channel ([`SourceHandle`]). The
//! [`combine`] task concatenates them (first source wins on a duplicate ID, as Sidecar's
//! MultiDiscovery answers health checks with the first non-empty source) and publishes
//! the combined [`LocalView`] only once every source has produced a first result, so
//! the announcer never mistakes "not read yet" for "nothing runs here".

pub mod config;
pub mod connect;
pub mod docker;
pub mod metrics;
pub mod plugin_source;
pub mod static_file;

pub use config::{DiscoveryConfig, DockerEndpoint, KUBERNETES_PLUGIN, KubernetesApi, Method};
pub use metrics::register_metrics;

use crate::metrics::PluginMetrics;
use docker::DockerConfig;
use sidecar_catalog::{Service, check_record};
use sidecar_plugin_host::{CheckSpec, Discovered, LoadedDiscovery, Namer, SidecarProxy};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Whose services a source reports: this node's name (their `Hostname`) and the IP
/// put on their ports.
#[derive(Debug, Clone)]
pub struct Origin {
    pub node: String,
    pub advertise_ip: String,
}

/// What the sources run with: the built-in methods' settings and the policy plugins.
pub struct Sources<'a> {
    pub config: &'a DiscoveryConfig,
    pub docker: &'a DockerConfig,
    pub namer: Arc<dyn Namer>,
    pub plugins: &'a [LoadedDiscovery],
    /// Failed plugin calls, counted per plugin.
    pub metrics: Arc<PluginMetrics>,
    /// Bumped on reload (SIGHUP): the static file is read again.
    pub rescan: tokio::sync::watch::Receiver<u64>,
}

/// Starts every configured source and the combiner on `tasks`; returns the combined
/// view (`None` until every source has reported once).
pub fn start(
    sources: Sources<'_>,
    origin: &Origin,
    tasks: &mut JoinSet<()>,
) -> watch::Receiver<Option<Arc<LocalView>>> {
    for unknown in &sources.config.unknown {
        tracing::warn!(
            "SIDECAR_DISCOVERY: unknown discovery method {unknown:?} ignored (known: docker, static, kubernetes_api; plugins come from plugins.toml)"
        );
    }
    let mut channels = Vec::new();
    let mut spawn = |name: String, run: Box<dyn FnOnce(SourceHandle) -> BoxedRun>| {
        let (handle, rx) = SourceHandle::new(name.clone());
        channels.push((name, rx));
        tasks.spawn(run(handle));
    };
    for m in &sources.config.methods {
        let origin = origin.clone();
        match m {
            Method::Static => {
                let path = sources.config.static_file.clone();
                let max_bytes = sources.config.static_max_bytes;
                let ports = sources.config.connect_ports.clone();
                let rescan = sources.rescan.clone();
                spawn(
                    "static".into(),
                    Box::new(move |h| {
                        Box::pin(static_file::run(path, max_bytes, ports, origin, h, rescan))
                    }),
                );
            }
            Method::Docker => {
                let (cfg, endpoint) = (sources.docker.clone(), sources.config.docker.clone());
                let namer = sources.namer.clone();
                spawn(
                    "docker".into(),
                    Box::new(move |h| Box::pin(docker::run(cfg, endpoint, namer, origin, h))),
                );
            }
            // The `discovery-kubernetes` plugin, started with the plugin sources below
            // (the configuration added it). Every source runs on its own task, so unlike
            // Sidecar's it need not be listed last.
            Method::KubernetesApi => {}
        }
    }
    for p in sources.plugins {
        let (plugin, origin, metrics) = (p.clone(), origin.clone(), sources.metrics.clone());
        spawn(
            format!("plugin:{}", p.name),
            Box::new(move |h| Box::pin(plugin_source::run(plugin, origin, h, metrics))),
        );
    }
    if channels.is_empty() {
        tracing::warn!("no discovery method configured: running passive (announcing nothing)");
    }
    let (view, combiner) = combine(channels);
    tasks.spawn(combiner);
    view
}

type BoxedRun = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One local service as discovery reports it, before health checks set its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    /// `Hostname` is filled in (this host, or the third-party host a static file names);
    /// `Status` is ignored: the announcer sets it from health checks.
    pub service: Service,
    /// `None`: Sidecar's default check.
    pub check: Option<CheckSpec>,
    /// The check came from a container's labels: the image's author wrote it, not the
    /// operator, so check types that run programs are refused unless the operator
    /// allows them (`SIDECAR_CONTAINER_EXEC_CHECKS`).
    pub check_from_container: bool,
    /// URL that wants change events POSTed to it (`SidecarListener`, static `ListenPort`).
    pub listener: Option<String>,
    /// This service is a Consul-style sidecar proxy (static `Connect.SidecarService`):
    /// the listeners the local proxy must open for it.
    pub sidecar_proxy: Option<SidecarProxy>,
}

impl LocalService {
    /// The catalog key.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            hostname: Arc::from(self.service.hostname.as_str()),
            id: Arc::from(self.service.id.as_str()),
        }
    }

    /// From a plugin's answer: an empty hostname means this host; a listen port becomes
    /// `http://<advertise ip>:<port>/sidecar/update`.
    pub fn from_discovered(d: Discovered, me: &str, advertise_ip: &str) -> Self {
        let mut service = d.service;
        if service.hostname.is_empty() {
            service.hostname = me.to_string();
        }
        for p in &mut service.ports {
            if p.ip.is_empty() {
                p.ip = advertise_ip.to_string();
            }
        }
        if service.proxy_mode.is_empty() {
            service.proxy_mode = "http".into();
        }
        LocalService {
            service,
            check: d.check.filter(|c| !c.check_type.is_empty()),
            check_from_container: false,
            listener: d
                .listen_port
                .filter(|p| *p > 0)
                .map(|p| listener_url(advertise_ip, p)),
            sidecar_proxy: None,
        }
    }
}

/// `http://<ip>:<port>/sidecar/update`, the URL Sidecar POSTs discovered listeners to.
pub fn listener_url(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("http://[{ip}]:{port}/sidecar/update")
    } else {
        format!("http://{ip}:{port}/sidecar/update")
    }
}

/// The start of a possibly huge, hostile string, for a log line.
pub fn preview(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let end = s.floor_char_boundary(MAX);
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

/// (Hostname, ID): how the catalog, the health scheduler and the announcer name a record.
/// Shared strings: the scheduler's maps and the status map hold the same key thousands
/// of times over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub hostname: Arc<str>,
    pub id: Arc<str>,
}

/// What one source reports right now.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    /// `None` until the source has produced its first complete result.
    pub services: Option<Arc<Vec<LocalService>>>,
    /// The last problem: a broken static file, Docker unreachable or a plugin error
    /// (the previous `services` stay in force), or items refused one by one (the rest
    /// of the result is in force).
    pub error: Option<String>,
}

/// The publishing end a source task owns, and the name it reports under.
pub struct SourceHandle {
    pub name: String,
    tx: watch::Sender<SourceState>,
}

impl SourceHandle {
    pub fn new(name: impl Into<String>) -> (Self, watch::Receiver<SourceState>) {
        let (tx, rx) = watch::channel(SourceState::default());
        (
            SourceHandle {
                name: name.into(),
                tx,
            },
            rx,
        )
    }

    /// The last published result.
    pub fn current(&self) -> Option<Arc<Vec<LocalService>>> {
        self.tx.borrow().services.clone()
    }

    /// A new complete result; clears the error. Unchanged results wake nobody.
    pub fn publish(&self, services: Vec<LocalService>) {
        self.publish_refusing(services, Vec::new());
    }

    /// A new complete result, less the items that break the record limits (and those
    /// the source already refused, `refused`: one reason each). The rest is published;
    /// the refusals become the source's error, so one bad item never holds back the
    /// others and is reported by name in the log, the API and `/metrics`.
    pub fn publish_refusing(&self, services: Vec<LocalService>, mut refused: Vec<String>) {
        let services = if services.iter().all(|s| check_record(&s.service).is_ok()) {
            services
        } else {
            services
                .into_iter()
                .filter(|s| match check_record(&s.service) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.push(format!("service {}: {e}", preview(&s.service.id)));
                        false
                    }
                })
                .collect()
        };
        let error = (!refused.is_empty()).then(|| {
            let mut msg = format!("refused {} item(s): ", refused.len());
            msg.push_str(&refused[..refused.len().min(5)].join("; "));
            if refused.len() > 5 {
                msg.push_str("; ...");
            }
            msg
        });
        let name = &self.name;
        self.tx.send_if_modified(|st| {
            let changed =
                st.error != error || st.services.as_deref().is_none_or(|old| old != &services);
            if st.error != error
                && let Some(e) = &error
            {
                tracing::warn!(source = %name, "discovery: {e}");
            }
            if changed {
                st.services = Some(Arc::new(services));
                st.error = error;
            }
            changed
        });
    }

    /// A failure; the last good result stays. Logged when the reason changes.
    pub fn fail(&self, reason: String) {
        let name = &self.name;
        self.tx.send_if_modified(|st| {
            if st.error.as_deref() == Some(reason.as_str()) {
                return false;
            }
            tracing::warn!(source = %name, "discovery: {reason} (keeping the last good set)");
            st.error = Some(reason);
            true
        });
    }

    /// A failure before any result: report it and count the source as empty, so that the
    /// other sources are announced (Sidecar announced whatever the working sources found).
    pub fn fail_first(&self, reason: String) {
        self.fail(reason);
        self.tx.send_if_modified(|st| {
            if st.services.is_none() {
                st.services = Some(Arc::new(Vec::new()));
                true
            } else {
                false
            }
        });
    }
}

/// The combined local view: every source has reported at least once.
#[derive(Debug, Clone, Default)]
pub struct LocalView {
    /// Shared with the source when there is only one (no copy of a large static file).
    pub services: Arc<Vec<LocalService>>,
    /// Per source: its name and current error, if any (for `/metrics` and logs).
    pub sources: Vec<(String, Option<String>)>,
}

/// Combines the sources into one view, published on every change once all are ready.
pub fn combine(
    sources: Vec<(String, watch::Receiver<SourceState>)>,
) -> (
    watch::Receiver<Option<Arc<LocalView>>>,
    impl std::future::Future<Output = ()>,
) {
    let (tx, rx) = watch::channel(None);
    let task = async move {
        let mut sources = sources;
        loop {
            let states: Vec<SourceState> = sources
                .iter_mut()
                .map(|(_, r)| r.borrow_and_update().clone())
                .collect();
            if states.iter().all(|s| s.services.is_some()) {
                let view = merge_sources(
                    sources
                        .iter()
                        .map(|(n, _)| n.clone())
                        .zip(states)
                        .collect::<Vec<_>>(),
                );
                tx.send_replace(Some(Arc::new(view)));
            }
            if sources.is_empty() {
                // Passive mode: nothing to wait for.
                std::future::pending::<()>().await;
            }
            let changes = sources.iter_mut().map(|(_, r)| Box::pin(r.changed()));
            let (res, _, _) = futures::future::select_all(changes).await;
            if res.is_err() {
                // A source task ended; keep serving the others' last views.
                sources.retain(|(_, r)| r.has_changed().is_ok());
            }
        }
    };
    (rx, task)
}

fn merge_sources(states: Vec<(String, SourceState)>) -> LocalView {
    let sources: Vec<(String, Option<String>)> = states
        .iter()
        .map(|(n, st)| (n.clone(), st.error.clone()))
        .collect();
    if let [(_, only)] = states.as_slice()
        && let Some(services) = &only.services
    {
        let mut seen = HashSet::with_capacity(services.len());
        if services.iter().all(|s| seen.insert(s.key())) {
            return LocalView {
                services: services.clone(),
                sources,
            };
        }
    }
    let mut seen = HashSet::new();
    let mut merged = Vec::new();
    for (name, st) in states {
        for svc in st.services.iter().flat_map(|s| s.iter()) {
            if seen.insert(svc.key()) {
                merged.push(svc.clone());
            } else {
                tracing::debug!(source = %name, id = %svc.service.id, "duplicate service ID; the first source wins");
            }
        }
    }
    LocalView {
        services: Arc::new(merged),
        sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn svc(id: &str) -> LocalService {
        LocalService {
            service: Service {
                id: id.into(),
                name: "web".into(),
                hostname: "me".into(),
                ..Service::default()
            },
            check: None,
            check_from_container: false,
            listener: None,
            sidecar_proxy: None,
        }
    }

    #[tokio::test]
    async fn combined_view_waits_for_every_source_and_dedupes() {
        let (a, ra) = SourceHandle::new("a");
        let (b, rb) = SourceHandle::new("b");
        let (mut view, task) = combine(vec![("a".into(), ra), ("b".into(), rb)]);
        tokio::spawn(task);
        a.publish(vec![svc("x"), svc("y")]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(view.borrow().is_none(), "b has not reported yet");
        b.publish(vec![svc("y"), svc("z")]);
        let v = view
            .wait_for(|v| v.is_some())
            .await
            .expect("open")
            .clone()
            .expect("some");
        let ids: Vec<_> = v.services.iter().map(|s| s.service.id.as_str()).collect();
        assert_eq!(ids, ["x", "y", "z"]);
    }

    #[tokio::test]
    async fn failures_keep_the_last_good_set() {
        let (a, ra) = SourceHandle::new("a");
        let (mut view, task) = combine(vec![("a".into(), ra)]);
        tokio::spawn(task);
        a.publish(vec![svc("x")]);
        a.fail("broken".into());
        let v = view
            .wait_for(|v| v.as_ref().is_some_and(|v| v.sources[0].1.is_some()))
            .await
            .expect("open")
            .clone()
            .expect("some");
        assert_eq!(v.services.len(), 1);
        assert_eq!(v.sources[0].1.as_deref(), Some("broken"));
    }

    #[tokio::test]
    async fn a_record_over_the_limits_is_refused_alone_and_named() {
        let (a, ra) = SourceHandle::new("a");
        let (mut view, task) = combine(vec![("a".into(), ra)]);
        tokio::spawn(task);
        a.publish_refusing(
            vec![svc(&"x".repeat(5000)), svc("good")],
            vec!["target 3: Service: expected an object".into()],
        );
        let v = view
            .wait_for(|v| v.is_some())
            .await
            .expect("open")
            .clone()
            .expect("some");
        let ids: Vec<_> = v.services.iter().map(|s| s.service.id.as_str()).collect();
        assert_eq!(ids, ["good"]);
        let err = v.sources[0].1.as_deref().expect("reported");
        assert!(err.starts_with("refused 2 item(s)"), "{err}");
        assert!(
            err.contains("(5000 bytes)") && err.contains("ID is 5000 bytes"),
            "{err}"
        );
        assert!(err.contains("target 3"), "{err}");
        assert!(err.len() < 400, "the message stays short: {err}");
    }

    #[test]
    fn plugin_results_get_host_defaults() {
        let d = Discovered {
            service: Service {
                id: "p1".into(),
                ports: vec![sidecar_catalog::Port {
                    port: 8080,
                    ..Default::default()
                }],
                ..Service::default()
            },
            check: Some(CheckSpec::default()),
            listen_port: Some(9000),
        };
        let l = LocalService::from_discovered(d, "me", "10.0.0.1");
        assert_eq!(l.service.hostname, "me");
        assert_eq!(l.service.ports[0].ip, "10.0.0.1");
        assert_eq!(l.service.proxy_mode, "http");
        assert_eq!(l.check, None, "an empty check type means the default check");
        assert_eq!(
            l.listener.as_deref(),
            Some("http://10.0.0.1:9000/sidecar/update")
        );
    }
}
