//! `sidecar agent`: assembles the daemon from its parts and runs it until a signal.

use crate::catalog::Catalog;
use crate::config::Env;
use crate::config::agent::CoreConfig;
use crate::shared_catalog::SharedCatalog;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How often unrefreshed records are expired and old tombstones purged (Sidecar: 2 s).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(core: CoreConfig, env: Env) -> anyhow::Result<()> {
    let started = Instant::now();
    tracing::info!(
        node = %core.node_name,
        cluster = %core.cluster_name,
        advertise_ip = %core.advertise_ip,
        http = %core.http_addr,
        "starting sidecar {}",
        env!("CARGO_PKG_VERSION")
    );
    let (catalog, _outbound) =
        SharedCatalog::new(Catalog::new(&core.node_name, &core.cluster_name));
    let mut tasks = JoinSet::new();
    tasks.spawn(catalog.clone().run_publisher());
    tasks.spawn(run_expiry(catalog.clone()));

    // Plugins: the proxy drivers ask for their emitters (with the settings the host adds)
    // before the runtime loads, so everything compiles once.
    let proxy_cfg = crate::proxy::ProxyConfig::load(&env)?;
    let mut plugins_cfg = crate::config::PluginsConfig::load(core.plugins_file.as_deref(), &env)?;
    for (name, settings) in proxy_cfg.emitters()? {
        plugins_cfg.require_emitter(&name, settings);
    }
    let plugins =
        crate::plugins::Runtime::load(&plugins_cfg, &crate::cli::plugin_load_options(&env)).await?;
    // Proxy drivers (HAProxy, Envoy xDS). They publish nothing before `ready` turns
    // true: this must be the local side's readiness signal (first complete discovery)
    // once discovery runs in the agent.
    let ready = crate::proxy::feed::ready_now();
    crate::proxy::start(
        &proxy_cfg,
        catalog.clone(),
        ready,
        &plugins.emitters,
        &mut tasks,
    )
    .await?;

    let api = crate::api::serve(core.http_addr, catalog.clone()).await?;
    tasks.spawn(async move {
        if let Err(e) = api.await {
            tracing::error!("HTTP API stopped: {e}");
        }
    });
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "agent ready"
    );

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        Some(res) = tasks.join_next() => {
            if let Err(e) = res {
                anyhow::bail!("a daemon task failed: {e}");
            }
        }
    }
    tasks.shutdown().await;
    Ok(())
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
