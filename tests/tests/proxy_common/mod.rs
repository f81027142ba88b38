//! Helpers of the proxy end-to-end tests: the built `sidecar` with static discovery and
//! fast health checks, backends with a health endpoint the test flips, HTTP over plain
//! sockets, and the real `haproxy` / `envoy` binaries (`scripts/setup.sh`).

// Each test crate uses part of these helpers and re-exports.
#![allow(dead_code, unused_imports)]

use sidecar_e2e::envoy;
pub use sidecar_e2e::net::{Backend, http_get, seen, tcp_line};
use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// One static-discovery target: `(id, name, mode, backend port, service port)`, with an
/// HttpGet check on the backend's `/health`.
pub fn target(id: &str, name: &str, mode: &str, port: u16, service_port: u16) -> serde_json::Value {
    serde_json::json!({
        "Service": {
            "ID": id, "Name": name, "Image": format!("{name}:1"), "ProxyMode": mode,
            "Ports": [{"Type": "tcp", "Port": port, "ServicePort": service_port, "IP": "127.0.0.1"}]
        },
        "Check": {"Type": "HttpGet", "Args": format!("http://127.0.0.1:{port}/health")}
    })
}

/// A running `sidecar` with static discovery from `dir/static.json`.
pub struct Agent {
    pub proc: KillOnDrop,
    pub api: String,
    pub dir: PathBuf,
}

impl Agent {
    pub fn start(dir: &Path, targets: &[serde_json::Value], env: &[(&str, String)]) -> Agent {
        write_targets(dir, targets);
        let http = free_port("127.0.0.1");
        let log = std::fs::File::create(dir.join("agent.log")).expect("log");
        let mut cmd = Command::new(sidecar_bin());
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("SIDECAR_NODE_NAME", "host1")
            .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
            .env("SIDECAR_BIND_IP", "127.0.0.1")
            .env("SIDECAR_BIND_PORT", free_port("127.0.0.1").to_string())
            .env("SIDECAR_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", dir.join("static.json"))
            .env("SIDECAR_HEALTH_INTERVAL", "200ms")
            .env("SIDECAR_HEALTH_TIMEOUT", "200ms")
            .env("HAPROXY_DISABLE", "true")
            .env("ENVOY_USE_GRPC_API", "false")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let agent = Agent {
            proc: KillOnDrop::spawn(&mut cmd),
            api: format!("http://127.0.0.1:{http}"),
            dir: dir.to_path_buf(),
        };
        wait_for("the agent's API", WAIT, || {
            ureq::get(&format!("{}/health", agent.api))
                .call()
                .ok()
                .map(|_| ())
        });
        agent
    }

    pub fn set_targets(&self, targets: &[serde_json::Value]) {
        write_targets(&self.dir, targets);
    }

    pub fn proxy_status(&self) -> serde_json::Value {
        ureq::get(&format!("{}/api/proxy.json", self.api))
            .call()
            .ok()
            .and_then(|r| r.into_json().ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn drain(&self, id: &str) -> u16 {
        match ureq::post(&format!("{}/api/services/{id}/drain", self.api)).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("drain: {e}"),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }
}

fn write_targets(dir: &Path, targets: &[serde_json::Value]) {
    let tmp = dir.join("static.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(targets).expect("json")).expect("write");
    std::fs::rename(&tmp, dir.join("static.json")).expect("rename");
}

/// Envoy with the bootstrap `sidecar envoy-bootstrap` prints; its admin port.
pub fn start_envoy(dir: &Path, ads_port: u16) -> (KillOnDrop, u16) {
    let admin = free_port("127.0.0.1");
    let out = Command::new(sidecar_bin())
        .args(["envoy-bootstrap", "--node-id", "host1"])
        .arg("--ads")
        .arg(format!("127.0.0.1:{ads_port}"))
        .arg("--admin")
        .arg(format!("127.0.0.1:{admin}"))
        .output()
        .expect("sidecar envoy-bootstrap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (envoy::spawn(dir, "host1", &out.stdout), admin)
}

/// The steps both proxies must follow, checked by traffic to `bind:web` after each:
/// `targets` (which add `a2` beside `a1`) take effect, `a1` fails its health check and
/// recovers, then `a2` is drained.
pub fn follow_add_unhealthy_drain(
    agent: &Agent,
    targets: &[serde_json::Value],
    a1: &Backend,
    bind: &str,
    web: u16,
) {
    agent.set_targets(targets);
    wait_for("a1 and a2", WAIT, || {
        (seen(bind, web, 10) == ["a1", "a2"]).then_some(())
    });

    // Unhealthy (its health endpoint fails), then healthy again.
    a1.healthy.store(false, Ordering::Relaxed);
    wait_for("only a2", WAIT, || {
        (seen(bind, web, 10) == ["a2"]).then_some(())
    });
    a1.healthy.store(true, Ordering::Relaxed);
    wait_for("a1 back", WAIT, || {
        (seen(bind, web, 10) == ["a1", "a2"]).then_some(())
    });

    assert_eq!(agent.drain("a2"), 202);
    wait_for("a2 drained", WAIT, || {
        (seen(bind, web, 10) == ["a1"]).then_some(())
    });
}

/// Stops the HAProxy an agent started (its master, by pid) when the test ends.
pub struct StopHaproxy(pub PathBuf);

impl Drop for StopHaproxy {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// An agent's HAProxy settings with every file in `dir`, frontends on `bind`, no stats
/// frontend and a short reload interval.
pub fn haproxy_env(dir: &Path, bind: &str) -> Vec<(&'static str, String)> {
    let p = |f: &str| dir.join(f).display().to_string();
    vec![
        ("HAPROXY_DISABLE", "false".into()),
        ("HAPROXY_CONFIG_FILE", p("haproxy.cfg")),
        ("HAPROXY_PID_FILE", p("haproxy.pid")),
        ("HAPROXY_STATS_SOCKET", p("stats.sock")),
        ("HAPROXY_MASTER_SOCKET", p("master.sock")),
        ("HAPROXY_BIND_IP", bind.into()),
        ("HAPROXY_USER", String::new()),
        ("HAPROXY_STATS_PORT", "0".into()),
        ("HAPROXY_MIN_RELOAD_INTERVAL", "200ms".into()),
    ]
}
