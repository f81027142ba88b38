//! `sidecar agent`: assembles the daemon from its parts and runs it until a signal.
//!
//! Wiring, in order: the catalog; the local side ([`start_local`]: discovery ->
//! health -> announcer, with a readiness signal); listeners; the HTTP API. The cluster
//! layer plugs in where `membership` and `outbound` are (it publishes the membership
//! view and consumes the records local operations stored); the proxy drivers take the
//! catalog and [`LocalSide::ready`] and publish nothing before it turns true.

use crate::api::{ApiContext, ApiMetrics};
use crate::config::AgentConfig;
use crate::discovery::docker::DockerConfig;
use crate::discovery::{self, DiscoveryConfig, LocalView, Method, Origin};
use crate::health::scheduler::{Scheduler, Statuses};
use crate::health::{CheckRegistry, CheckReports, HealthConfig, HealthMetrics};
use crate::listeners::{self, ListenerMetrics};
use crate::metrics::{Exposition, PluginMetrics, Registry};
use crate::shared_catalog::SharedCatalog;
use sidecar_catalog::Catalog;
use sidecar_plugin_host::{LoadedDiscovery, LoadedPlugins, Namer, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often unrefreshed records are expired and old tombstones purged (Sidecar: 2 s).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(2);

/// The policy the local side calls: the plugin runtime's namer, check types and
/// discovery sources.
#[derive(Clone)]
pub struct Policy {
    pub namer: Arc<dyn Namer>,
    pub checks: CheckRegistry,
    pub discovery: Vec<LoadedDiscovery>,
    /// Replacement check registries after a plugins.toml reload.
    pub check_updates: Option<watch::Receiver<CheckRegistry>>,
}

impl Policy {
    /// What plugins.toml (or the embedded defaults) configured.
    pub fn from_loaded(loaded: &LoadedPlugins) -> Self {
        Policy {
            namer: loaded.namer.clone(),
            checks: CheckRegistry::new(
                loaded
                    .checks
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
            .with_exec_types(loaded.exec_check_types()),
            discovery: loaded.discovery.clone(),
            check_updates: None,
        }
    }
}

/// Settings of the local side, each parsed from its own group of variables.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub node_name: String,
    pub advertise_ip: String,
    pub discovery: DiscoveryConfig,
    pub docker: DockerConfig,
    pub health: HealthConfig,
}

impl LocalConfig {
    pub fn from_agent(cfg: &AgentConfig) -> Self {
        LocalConfig {
            node_name: cfg.core.node_name.clone(),
            advertise_ip: cfg.core.advertise_ip.to_string(),
            discovery: cfg.discovery.clone(),
            docker: cfg.docker.clone(),
            health: cfg.health.clone(),
        }
    }
}

/// Handles of the running local side.
pub struct LocalSide {
    /// The combined discovery view (`None` until every source has reported).
    pub view: watch::Receiver<Option<Arc<LocalView>>>,
    /// Check status of each local service with a result.
    pub health: watch::Receiver<Statuses>,
    /// True once the first complete local discovery result is in the catalog.
    pub ready: watch::Receiver<bool>,
    /// Each local check's last result.
    pub checks: CheckReports,
}

/// What the local side records: check latency and results, failed plugin calls.
#[derive(Debug, Default, Clone)]
pub struct LocalMetrics {
    pub health: Arc<HealthMetrics>,
    pub plugins: Arc<PluginMetrics>,
}

impl LocalMetrics {
    pub fn register(&self, registry: &mut Registry) {
        self.health.register(registry);
        self.plugins.register(registry);
    }
}

/// Starts discovery, the health scheduler and the announcer on `tasks`. Discovered
/// listeners are reconciled with `listeners` before the announcer sees a view.
pub fn start_local(
    cfg: &LocalConfig,
    policy: &Policy,
    catalog: Arc<SharedCatalog>,
    metrics: &LocalMetrics,
    listeners: Option<Arc<listeners::Registry>>,
    rescan: watch::Receiver<u64>,
    tasks: &mut JoinSet<()>,
) -> LocalSide {
    let origin = Origin {
        node: cfg.node_name.clone(),
        advertise_ip: cfg.advertise_ip.clone(),
    };
    let sources = discovery::Sources {
        config: &cfg.discovery,
        docker: &cfg.docker,
        namer: policy.namer.clone(),
        plugins: &policy.discovery,
        metrics: metrics.plugins.clone(),
        rescan,
    };
    let mut view = discovery::start(sources, &origin, tasks);
    if let Some(registry) = listeners {
        let (staged, stage) = listeners::stage(registry, view);
        tasks.spawn(stage);
        view = staged;
    }

    let (health_tx, health) = watch::channel(Statuses::default());
    let scheduler = Scheduler {
        config: cfg.health.clone(),
        registry: policy.checks.clone(),
        host_ip: cfg.advertise_ip.clone(),
        metrics: metrics.health.clone(),
        plugins: metrics.plugins.clone(),
        reports: CheckReports::default(),
        updates: policy.check_updates.clone(),
    };
    let checks = scheduler.reports.clone();
    tasks.spawn(scheduler.run(view.clone(), health_tx));

    let (ready_tx, ready) = watch::channel(false);
    tasks.spawn(crate::announcer::run(
        catalog,
        view.clone(),
        health.clone(),
        ready_tx,
    ));
    LocalSide {
        view,
        health,
        ready,
        checks,
    }
}

/// What SIGHUP needs: the configuration read again the way it was read at start, and
/// a way to change the log filter of the running subscriber.
pub struct Reloader {
    pub load: Box<dyn Fn() -> anyhow::Result<AgentConfig> + Send + Sync>,
    pub set_log_filter: SetLogFilter,
}

/// Replaces the running log filter (`RUST_LOG` syntax); the error says why not.
pub type SetLogFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Runs the agent until SIGINT/SIGTERM; SIGHUP reloads (see [`crate::reload`]).
pub async fn run(cfg: AgentConfig, reloader: Option<Reloader>) -> anyhow::Result<()> {
    let started = Instant::now();
    let core = &cfg.core;
    crate::memory::tune_allocator();
    crate::limits::raise_open_files();
    tracing::info!(
        node = %core.node_name,
        cluster = %core.cluster_name,
        advertise_ip = %core.advertise_ip,
        http = %core.http_addr,
        "starting sidecar {}",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(d) = &core.advertise_detected {
        if d.doubtful {
            tracing::warn!(ip = %d.ip, interface = %d.interface, "advertise IP detected: {}", d.reason);
        } else {
            tracing::info!(ip = %d.ip, interface = %d.interface, "advertise IP detected: {}", d.reason);
        }
    }
    let notifier = Arc::new(crate::service_manager::Notifier::new(&cfg.service_manager));
    let local_cfg = LocalConfig::from_agent(&cfg);
    // One plugin load for everything: the local side's policy and the proxy drivers'
    // emitters (the configuration requested those with the host's settings).
    let plugins_cfg = &cfg.plugins.config;
    // What `Ttl` and `Alias` checks read (TTL reports, local statuses); it follows the
    // catalog once that exists, and reloaded plugins get the same one.
    let local_state = Arc::new(crate::health::LocalState::default());
    let mut plugin_options = cfg.plugins.options.clone();
    plugin_options.local = Some(local_state.clone());
    let loaded = Runtime::load(plugins_cfg, &plugin_options).await?;
    let problems = loaded.problems();
    for (plugin, reason) in &problems {
        tracing::warn!(%plugin, "plugin disabled: {reason}");
    }
    // Sidecar exited on a bad namer setting; naming every container by its image
    // instead would announce them all under wrong names.
    let namer = &plugins_cfg.namer.plugin;
    if local_cfg.discovery.uses(Method::Docker)
        && let Some((_, reason)) = problems.iter().find(|(p, _)| p == namer)
    {
        anyhow::bail!("the namer plugin {namer} is disabled: {reason}");
    }
    let (precompiled, from_cache, compiled) = loaded.code_sources();
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        plugins = loaded.describe().len(),
        precompiled,
        from_cache,
        compiled,
        "plugins ready"
    );
    let live = Arc::new(crate::reload::LivePlugins::new(loaded).with_local(local_state.clone()));
    let policy = live.policy();
    tracing::info!(
        discovery = ?local_cfg.discovery.methods,
        static_file = %local_cfg.discovery.static_file.display(),
        checks = ?policy.checks.names(),
        health_interval = ?local_cfg.health.interval,
        "local side configured"
    );

    let (catalog, outbound) = SharedCatalog::new(Catalog::with_lifespans(
        &core.node_name,
        &core.cluster_name,
        cfg.catalog.lifespans.clone(),
    ));
    local_state.attach(catalog.clone());
    // Before anything local is announced: a node in maintenance stays out of routing.
    let maintenance =
        crate::maintenance::Maintenance::restore(core.state_dir.as_deref(), catalog.clone());
    let cluster = crate::gossip::start(cfg.cluster.clone(), catalog.clone(), outbound).await?;
    // Every subsystem registers its own families; the API renders the one registry.
    let mut registry = Registry::default();
    crate::metrics::register_process_and_build(&mut registry);
    catalog.register_metrics(&mut registry);
    cluster.register_metrics(&mut registry);
    let local_metrics = LocalMetrics::default();
    local_metrics.register(&mut registry);
    let listener_metrics = Arc::new(ListenerMetrics::default());
    listener_metrics.register(&mut registry);
    let mut tasks = JoinSet::new();
    tasks.spawn(catalog.clone().run_publisher());
    tasks.spawn(run_expiry(catalog.clone()));

    let listeners = listeners::start(
        &cfg.listeners,
        catalog.clone(),
        core.node_name.clone(),
        listener_metrics,
        &mut tasks,
    )?;
    let (rescan_tx, rescan) = watch::channel(0u64);
    let local = start_local(
        &local_cfg,
        &policy,
        catalog.clone(),
        &local_metrics,
        Some(listeners),
        rescan,
        &mut tasks,
    );
    // Proxy drivers (HAProxy, Envoy xDS): they publish nothing before the first
    // complete local discovery.
    let proxy = crate::proxy::start(
        &cfg.proxy,
        catalog.clone(),
        local.ready.clone(),
        &live.emitters(),
        &mut tasks,
    )
    .await?;

    // The cluster publishes the membership view and consumes `outbound`.
    discovery::register_metrics(local.view.clone(), &mut registry);
    proxy.register_metrics(&mut registry);
    let api_metrics = Arc::new(ApiMetrics::default());
    api_metrics.register(&mut registry);
    // The DNS interface reads the catalog and the member list, like the API.
    let dns_metrics = Arc::new(crate::dns::DnsMetrics::default());
    dns_metrics.register(&mut registry);
    crate::dns::start(
        &cfg.dns,
        core.advertise_ip,
        catalog.clone(),
        cluster.watch(),
        dns_metrics,
        &mut tasks,
    )
    .await?;
    let mut ctx = ApiContext::new(catalog.clone(), cluster.watch())
        .with_metrics(api_metrics, Arc::new(Exposition::new(registry)))
        .with_proxy(proxy);
    ctx.write_token = core.api_token.as_deref().map(Arc::from);
    ctx.checks = local.checks.clone();
    ctx.local = Some(local_state);
    ctx.maintenance = Some(maintenance);
    ctx.envoy_v1 = Arc::new(crate::api::envoy_v1::EnvoyV1 {
        bind_ip: cfg.proxy.haproxy.bind_ip.clone(),
        use_hostnames: cfg.proxy.haproxy.use_hostnames,
    });
    if core.api_auth_reads {
        anyhow::ensure!(
            ctx.write_token.is_some(),
            "SIDECAR_API_AUTH_READS needs a token: set SIDECAR_API_TOKEN or SIDECAR_API_TOKEN_FILE"
        );
        ctx.read_token = ctx.write_token.clone();
    }
    let api =
        crate::api::serve(core.http_addr, cfg.http.clone(), core.api_tls.clone(), ctx).await?;
    tasks.spawn(async move {
        if let Err(e) = api.await {
            tracing::error!("HTTP API stopped: {e}");
        }
    });
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "agent ready"
    );
    // systemd (Type=notify): plugins are loaded, the API and gossip listen.
    notifier.notify(&format!(
        "READY=1\nSTATUS=serving the API on {} and gossip on {}",
        core.http_addr, cfg.cluster.bind
    ));
    if let (Some(period), true) = (cfg.service_manager.watchdog, notifier.enabled()) {
        tokio::spawn(crate::service_manager::watchdog(
            notifier.clone(),
            period,
            &crate::service_manager::LOOPS,
        ));
    }
    tokio::spawn(settle_memory(local.ready.clone()));

    if let Some(reloader) = reloader {
        tokio::spawn(crate::reload::on_sighup(
            reloader,
            cfg.clone(),
            live.clone(),
            rescan_tx,
            notifier.clone(),
        ));
    }
    tokio::select! {
        e = cluster.join_failure() => {
            return Err(e.into());
        }
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            notifier.notify("STOPPING=1");
            cluster.leave().await;
        }
        Some(res) = tasks.join_next() => {
            if let Err(e) = res {
                anyhow::bail!("a daemon task failed: {e}");
            }
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// Once start-up is over (first local discovery announced, plus a grace period for the
/// cluster join), hands back what start-up left resident: freed heap pages (plugin
/// compilation, the initial catalog exchange) and start-up-only code and constants.
async fn settle_memory(mut ready: watch::Receiver<bool>) {
    let _ = tokio::time::timeout(Duration::from_secs(60), ready.wait_for(|r| *r)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    crate::memory::trim_heap();
    crate::memory::release_startup_pages();
}

async fn run_expiry(catalog: Arc<SharedCatalog>) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let applied = catalog.expire();
        for ev in &applied.events {
            tracing::info!(host = %ev.service.hostname, id = %ev.service.id, name = %ev.service.name, "expired unrefreshed record");
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
