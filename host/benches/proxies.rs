//! Proxy benchmarks with the real binaries (HAProxy 2.6, Envoy 1.40) on loopback.
//!
//! `cargo bench -p sidecar --bench proxies` (or `scripts/bench-proxies.sh`). The
//! drivers run in-process as the agent runs them, fed by the shared catalog, calling
//! the embedded `proxy-haproxy` / `proxy-envoy` WebAssembly plugins through the plugin
//! runtime. Figures go to docs/benchmarks.md ("Proxies").

#[path = "../tests/proxy_common/mod.rs"]
mod proxy_common;

use proxy_common::*;
use sidecar::proxy::feed::ready_now;
use sidecar::proxy::haproxy::{self, HaproxyConfig, reload};
use sidecar::proxy::xds::{self, EnvoyConfig};
use sidecar::shared_catalog::SharedCatalog;
use sidecar_catalog::Service;
use sidecar_plugin_host::ProxyEmitter;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// An embedded emitter plugin, loaded through the plugin runtime with host settings.
fn wasm_emitter(
    rt: &tokio::runtime::Runtime,
    name: &str,
    settings: Vec<(String, String)>,
) -> Arc<dyn ProxyEmitter> {
    let mut cfg =
        sidecar_plugin_host::PluginsConfig::load(None, &Default::default()).expect("defaults");
    cfg.require_emitter(name, settings);
    let loaded = rt
        .block_on(sidecar_plugin_host::Runtime::load(
            &cfg,
            &sidecar_plugin_host::LoadOptions::default(),
        ))
        .expect("plugins");
    let e = loaded.emitters.get(name).cloned().expect("emitter");
    // The runtime lives as long as the emitter holds it.
    std::mem::forget(loaded);
    e
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn report(what: &str, samples: &mut [Duration]) {
    let (p50, p99, max) = (
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        percentile(samples, 1.0),
    );
    println!(
        "{what}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

/// Steady load: `threads` clients, a new connection per request; counts failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match http_get("127.0.0.1", port) {
                            Some((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn envoy(dir: &Path) {
    let rt = runtime();
    let (catalog, _out) = SharedCatalog::with_defaults("host1", "default");
    rt.spawn(catalog.clone().run_publisher());
    let ads = free_port("127.0.0.1");
    let cfg = EnvoyConfig {
        grpc_port: ads,
        bind_ip: "127.0.0.1".into(),
        ..EnvoyConfig::load(&sidecar::config::Env::default()).expect("defaults")
    };
    let emitter = wasm_emitter(&rt, "proxy-envoy", cfg.plugin_settings());
    let (status, _task) = rt
        .block_on(xds::spawn(&cfg, emitter, catalog.clone(), ready_now()))
        .expect("xDS");
    let backends: Vec<Backend> = (0..3).map(|i| Backend::start(&format!("b{i}"))).collect();
    let port = free_port("127.0.0.1");
    let one = |i: usize| {
        vec![service(
            &format!("b{i}"),
            "web",
            "http",
            backends[i].port,
            port,
        )]
    };
    catalog.sync_local(one(0));
    let (_envoy, admin) = start_envoy(dir, ads, "bench");
    wait_for("Envoy serving", WAIT, || {
        (http_get("127.0.0.1", port)?.1 == "b0").then_some(())
    });

    // Catalog change -> first request served by the new endpoint.
    let mut samples = Vec::new();
    for n in 1..=60 {
        let i = n % 3;
        let want = format!("b{i}");
        let t = Instant::now();
        catalog.sync_local(one(i));
        wait_for("new endpoint", WAIT, || {
            (http_get("127.0.0.1", port)?.1 == want).then_some(())
        });
        samples.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(30));
    }
    report(
        "envoy: catalog change -> new endpoint serving",
        &mut samples,
    );

    // Failed requests during 100 endpoint changes under steady load.
    let load = Load::start(port, 2);
    std::thread::sleep(Duration::from_millis(200));
    for n in 0..100 {
        catalog.sync_local(one(n % 3));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, failed) = load.finish();
    println!("envoy: 100 endpoint changes under load: {ok} ok, {failed} failed");

    // Large pushes: N endpoints in one service.
    for n in [1_000usize, 5_000] {
        let big_port = free_port("127.0.0.1");
        let many: Vec<Service> = (0..n)
            .map(|i| {
                let mut s = service(
                    &format!("m{i}"),
                    "many",
                    "http",
                    20_000 + i as u16,
                    big_port,
                );
                s.ports[0].ip = format!("127.1.{}.{}", i / 250, i % 250 + 1);
                s
            })
            .collect();
        let mut all = one(0);
        all.extend(many);
        let t = Instant::now();
        catalog.sync_local(all);
        let stat = format!("cluster.many_{big_port}.membership_total");
        wait_for("all endpoints in Envoy", WAIT, || {
            (envoy_stat(admin, &stat)? == n as u64).then_some(())
        });
        println!(
            "envoy: push of {n} endpoints -> all in Envoy: {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        catalog.sync_local(one(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    let c = status.to_json();
    println!(
        "envoy: xDS counters: pushes={} acks={} nacks={} mean push->ACK={:.2} ms",
        c["counters"]["pushes"],
        c["counters"]["acks"],
        c["counters"]["nacks"],
        c["counters"]["mean_ack_latency_ms"].as_f64().unwrap_or(0.0)
    );
}

fn haproxy(dir: &Path) {
    let rt = runtime();
    let (catalog, _out) = SharedCatalog::with_defaults("host1", "default");
    rt.spawn(catalog.clone().run_publisher());
    let mut cfg = HaproxyConfig::load(&sidecar::config::Env::default()).expect("defaults");
    cfg.config_file = dir.join("haproxy.cfg");
    cfg.pid_file = dir.join("haproxy.pid");
    cfg.stats_socket = dir.join("stats.sock");
    cfg.master_socket = dir.join("master.sock");
    cfg.bind_ip = "127.0.0.1".into();
    cfg.user = String::new();
    cfg.stats_port = 0;
    let emitter = wasm_emitter(
        &rt,
        "proxy-haproxy",
        cfg.plugin_settings().expect("settings"),
    );
    let backends: Vec<Backend> = (0..3).map(|i| Backend::start(&format!("b{i}"))).collect();
    let port = free_port("127.0.0.1");
    let one = |i: usize| {
        vec![service(
            &format!("b{i}"),
            "web",
            "http",
            backends[i].port,
            port,
        )]
    };

    // Latency of an isolated change: changes spaced beyond the reload interval.
    let mut fast = cfg.clone();
    fast.min_reload_interval = Duration::from_millis(250);
    let (status, task) = {
        let _g = rt.enter();
        haproxy::spawn(fast, emitter.clone(), catalog.clone(), ready_now())
    };
    catalog.sync_local(one(0));
    wait_for("HAProxy serving", WAIT, || {
        (http_get("127.0.0.1", port)?.1 == "b0").then_some(())
    });
    let mut samples = Vec::new();
    for n in 1..=30 {
        let i = n % 3;
        let want = format!("b{i}");
        let t = Instant::now();
        catalog.sync_local(one(i));
        wait_for("new endpoint", WAIT, || {
            (http_get("127.0.0.1", port)?.1 == want).then_some(())
        });
        samples.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    report(
        "haproxy: catalog change -> new endpoint serving (runtime API)",
        &mut samples,
    );

    // A structural change (a new service: new frontend) needs a reload.
    let mut samples = Vec::new();
    let mut services = one(0);
    for n in 0..20 {
        let new_port = free_port("127.0.0.1");
        services.push(service(
            &format!("s{n}"),
            &format!("svc{n}"),
            "http",
            backends[1].port,
            new_port,
        ));
        let t = Instant::now();
        catalog.sync_local(services.clone());
        wait_for("new service", WAIT, || {
            (http_get("127.0.0.1", new_port)?.1 == "b1").then_some(())
        });
        samples.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    report(
        "haproxy: new service -> serving (verify + reload)",
        &mut samples,
    );
    task.abort();
    drop(status);
    catalog.sync_local(one(0));

    // Default settings (at least 2 s between reloads).
    let (status, _task) = {
        let _g = rt.enter();
        haproxy::spawn(cfg.clone(), emitter, catalog.clone(), ready_now())
    };
    std::thread::sleep(Duration::from_millis(2500));
    let c = &status.counters;
    let (r0, u0) = (
        c.reloads.load(Ordering::Relaxed),
        c.runtime_updates.load(Ordering::Relaxed),
    );
    let load = Load::start(port, 2);
    let t = Instant::now();
    for n in 0..100 {
        catalog.sync_local(one(n % 3));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, failed) = load.finish();
    println!(
        "haproxy: 100 endpoint changes in {:.1} s under load: {ok} ok, {failed} failed, {} reloads, {} runtime updates",
        t.elapsed().as_secs_f64(),
        c.reloads.load(Ordering::Relaxed) - r0,
        c.runtime_updates.load(Ordering::Relaxed) - u0
    );

    // Continuous structural churn (a service added or removed every 100 ms for 30 s)
    // under load on a steady service: the reload rate stays bounded.
    let r0 = c.reloads.load(Ordering::Relaxed);
    let load = Load::start(port, 2);
    let t = Instant::now();
    let extra_port = free_port("127.0.0.1");
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(30) {
        let mut s = one(0);
        if n % 2 == 1 {
            s.push(service("x", "churn", "http", backends[1].port, extra_port));
        }
        catalog.sync_local(s);
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, failed) = load.finish();
    let reloads = c.reloads.load(Ordering::Relaxed) - r0;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "haproxy: {n} structural changes in {secs:.0} s under load: {ok} ok, {failed} failed, {reloads} reloads ({:.0}/min)",
        reloads as f64 * 60.0 / secs
    );
    if let Some(pid) = reload::running_master(&cfg.pid_file) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one proxy.
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let dir = tempfile::tempdir().expect("tmp");
    if which.is_empty() || which.iter().any(|w| w == "envoy") {
        envoy(dir.path());
    }
    if which.is_empty() || which.iter().any(|w| w == "haproxy") {
        haproxy(dir.path());
    }
}
