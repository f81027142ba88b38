//! The HAProxy driver with a real HAProxy 2.6: the `proxy-haproxy` emitter (compiled
//! natively), verify with `haproxy -c`, master-worker reloads, traffic to real backends.

mod proxy_common;

use async_trait::async_trait;
use proxy_common::*;
use sidecar::proxy::feed::ready_now;
use sidecar::proxy::haproxy::{self, HaproxyConfig, HaproxyStatus, reload};
use sidecar::shared_catalog::SharedCatalog;
use sidecar_catalog::{Service, Status};
use sidecar_plugin_host::{EmitRequest, Emitted, PluginError, ProxyEmitter};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// `proxy-haproxy`, plus a line HAProxy refuses while a service named `poison` is in
/// the catalog (a stand-in for a broken user template).
struct Appending {
    inner: NativeHaproxy,
}

#[async_trait]
impl ProxyEmitter for Appending {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let poisoned = req
            .services
            .iter()
            .any(|s| s.name == "poison" && s.status == Status::Alive);
        match self.inner.emit(req).await? {
            Emitted::ConfigFile(mut text) => {
                if poisoned {
                    text.push_str("\n    bogus_directive here\n");
                }
                Ok(Emitted::ConfigFile(text))
            }
            other => Ok(other),
        }
    }
}

struct World {
    _rt: tokio::runtime::Runtime,
    catalog: Arc<SharedCatalog>,
    status: Arc<HaproxyStatus>,
    cfg: HaproxyConfig,
}

impl World {
    fn start(dir: &Path, min_reload_interval: Duration) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (catalog, _outbound) = SharedCatalog::with_defaults("host1", "default");
        rt.spawn(catalog.clone().run_publisher());
        let mut cfg = HaproxyConfig::load(&sidecar::config::Env::default()).expect("defaults");
        cfg.config_file = dir.join("haproxy.cfg");
        cfg.pid_file = dir.join("haproxy.pid");
        cfg.stats_socket = dir.join("stats.sock");
        cfg.master_socket = dir.join("master.sock");
        cfg.bind_ip = "127.0.0.1".into();
        cfg.user = String::new();
        cfg.stats_port = 0;
        cfg.min_reload_interval = min_reload_interval;
        let settings =
            proxy_haproxy::render::Settings::parse(&cfg.plugin_settings().expect("settings"))
                .expect("valid settings");
        let dyn_emitter: Arc<dyn ProxyEmitter> = Arc::new(Appending {
            inner: NativeHaproxy(settings),
        });
        let (status, _task) = {
            let _guard = rt.enter();
            haproxy::spawn(cfg.clone(), dyn_emitter, catalog.clone(), ready_now())
        };
        World {
            _rt: rt,
            catalog,
            status,
            cfg,
        }
    }

    fn set(&self, services: Vec<Service>) {
        self.catalog.sync_local(services);
    }

    fn reloads(&self) -> u64 {
        self.status.counters.reloads.load(Ordering::Relaxed)
    }

    fn master(&self) -> Option<u32> {
        reload::running_master(&self.cfg.pid_file)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Stop the HAProxy this test started (its master, by pid).
        if let Some(pid) = self.master() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

#[test]
fn haproxy_follows_the_catalog_and_never_loads_a_bad_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start(dir.path(), Duration::from_millis(100));
    let (a1, a2, t1) = (
        Backend::start("a1"),
        Backend::start("a2"),
        Backend::start("t1"),
    );
    let (web_port, db_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let web = |id: &str, b: &Backend| service(id, "web", "http", b.port, web_port);
    let db = service("db1", "db", "tcp", t1.port, db_port);

    w.set(vec![web("a1", &a1), db.clone()]);
    wait_for("HTTP through HAProxy", WAIT, || {
        (http_get("127.0.0.1", web_port)? == (200, "a1".to_string())).then_some(())
    });
    assert_eq!(tcp_line("127.0.0.1", db_port).as_deref(), Some("t1"));
    let text = std::fs::read_to_string(&w.cfg.config_file).expect("config written");
    assert!(text.contains("server host1-a1 127.0.0.1:"), "{text}");
    let master = w.master().expect("master-worker running");

    w.set(vec![web("a1", &a1), web("a2", &a2), db.clone()]);
    wait_for("both instances", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1", "a2"]).then_some(())
    });
    let mut sick = web("a1", &a1);
    sick.status = Status::Unhealthy;
    w.set(vec![sick, web("a2", &a2), db.clone()]);
    wait_for("only a2", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a2"]).then_some(())
    });
    assert_eq!(w.master(), Some(master), "reloads keep the master");

    // A config that fails `haproxy -c` is never installed: the instance to blame is
    // found and quarantined, the config without it goes live (a1 healthy again).
    let poison = service("p1", "poison", "http", a1.port, free_port("127.0.0.1"));
    w.set(vec![web("a1", &a1), web("a2", &a2), db.clone(), poison]);
    let q = wait_for("the poison quarantined", WAIT, || {
        w.status.quarantined().into_iter().find(|q| q.id == "p1")
    });
    assert_eq!(q.kind.as_str(), "rejected");
    assert!(q.reason.contains("bogus_directive"), "{}", q.reason);
    assert!(w.status.counters.verify_failures.load(Ordering::Relaxed) >= 1);
    assert!(w.status.state().last_error.is_none());
    let text = std::fs::read_to_string(&w.cfg.config_file).expect("config");
    assert!(
        !text.contains("bogus") && !text.contains("poison"),
        "{text}"
    );
    wait_for("the change without the poison applied", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1", "a2"]).then_some(())
    });
    assert_eq!(tcp_line("127.0.0.1", db_port).as_deref(), Some("t1"));

    // Fixed: the next change goes through.
    w.set(vec![web("a1", &a1), web("a2", &a2)]);
    wait_for("both again", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1", "a2"]).then_some(())
    });
    wait_for("quarantine emptied", WAIT, || {
        w.status.quarantined().is_empty().then_some(())
    });
    wait_for("db frontend removed", WAIT, || {
        tcp_line("127.0.0.1", db_port).is_none().then_some(())
    });
}

#[test]
fn endpoint_changes_go_through_the_runtime_api_without_a_reload() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start(dir.path(), Duration::from_secs(2));
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
    w.set(one(0));
    wait_for("first config", WAIT, || {
        (http_get("127.0.0.1", port)?.1 == "b0").then_some(())
    });
    // The driver recorded what HAProxy runs (counters included).
    wait_for("delivery recorded", WAIT, || {
        let text = std::fs::read_to_string(&w.cfg.config_file).ok()?;
        (w.status.state().last_good?.version == haproxy::version_of(&text)).then_some(())
    });
    let workers = |w: &World| {
        w._rt
            .block_on(haproxy::master::show_proc(&w.cfg.master_socket))
            .expect("show proc")
            .workers
    };
    let before = workers(&w);
    let reloads = w.reloads();
    for i in [1, 2, 0, 1] {
        w.set(one(i));
        let want = format!("b{i}");
        wait_for("new endpoint", WAIT, || {
            (seen("127.0.0.1", port, 3) == [want.as_str()]).then_some(())
        });
    }
    assert_eq!(workers(&w), before, "no reload: the same worker serves");
    assert_eq!(w.reloads(), reloads);
    assert!(w.status.counters.runtime_updates.load(Ordering::Relaxed) >= 4);
    // The file holds the real addresses (a later reload loads what runs).
    let text = std::fs::read_to_string(&w.cfg.config_file).expect("config");
    assert!(
        text.contains(&format!("server host1-b1 127.0.0.1:{} ", backends[1].port)),
        "{text}"
    );
}

#[test]
fn bursts_of_structural_changes_are_coalesced_into_few_reloads() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start(dir.path(), Duration::from_secs(1));
    let b = Backend::start("b");
    let ports: Vec<u16> = (0..20).map(|_| free_port("127.0.0.1")).collect();
    let services = |n: usize| -> Vec<Service> {
        (0..n)
            .map(|i| {
                service(
                    &format!("s{i}"),
                    &format!("svc{i}"),
                    "http",
                    b.port,
                    ports[i],
                )
            })
            .collect()
    };
    w.set(services(1));
    wait_for("first config", WAIT, || (w.reloads() == 1).then_some(()));
    // 19 new services (a new frontend each) within ~1 s.
    for n in 2..=20 {
        w.set(services(n));
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("the last service served", WAIT, || {
        (http_get("127.0.0.1", ports[19])?.1 == "b").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1200));
    let reloads = w.reloads();
    assert!(
        reloads <= 4,
        "{reloads} reloads for 20 structural changes in 1 s"
    );
}
