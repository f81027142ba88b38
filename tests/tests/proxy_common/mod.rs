//! Helpers of the proxy end-to-end tests: the built `sidecar` with static discovery and
//! fast health checks, backends with a health endpoint the test flips, HTTP over plain
//! sockets, and the real `haproxy` / `envoy` binaries (`scripts/setup.sh`).

#![allow(dead_code)]

use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for, workspace_root};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// `$ENVOY_BIN`, else `target/tools/envoy` (scripts/setup.sh setup_envoy).
pub fn envoy_bin() -> PathBuf {
    let p = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools/envoy"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh",
        p.display()
    );
    p
}

/// A backend that answers `GET /health` with 200 or 500 (flippable) and anything else
/// (HTTP, or a line over raw TCP) with its name.
pub struct Backend {
    pub port: u16,
    pub healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(true));
        let (name, flag, h) = (name.to_string(), stop.clone(), healthy.clone());
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (name, h) = (name.clone(), h.clone());
                        std::thread::spawn(move || serve(conn, &name, &h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend {
            port,
            healthy,
            stop,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, name: &str, healthy: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !(buf.windows(4).any(|w| w == b"\r\n\r\n")
            || (buf.ends_with(b"\n") && !buf.starts_with(b"GET")))
        {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let reply = if buf.starts_with(b"GET /health") {
            let ok = healthy.load(Ordering::Relaxed);
            let (code, body) = if ok {
                ("200 OK", "ok")
            } else {
                ("500 Oops", "sick")
            };
            format!(
                "HTTP/1.1 {code}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else if buf.starts_with(b"GET") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                name.len()
            )
        } else {
            format!("{name}\n")
        };
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
        buf.clear();
    }
}

/// `GET /` on a new connection: `(status, body)`, or `None` if nothing answers.
pub fn http_get(ip: &str, port: u16) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

/// A line over raw TCP; the answer's first line.
pub fn tcp_line(ip: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"hello\n").ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// Backend names answering over `n` new connections.
pub fn seen(ip: &str, port: u16, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .filter_map(|_| http_get(ip, port))
        .filter(|(c, _)| *c == 200)
        .map(|(_, b)| b)
        .collect();
    v.sort();
    v.dedup();
    v
}

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
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, &out.stdout).expect("bootstrap");
    let log = std::fs::File::create(dir.join("envoy.log")).expect("log");
    let p = KillOnDrop::spawn(
        Command::new(envoy_bin())
            .arg("-c")
            .arg(&path)
            .args(["--disable-hot-restart", "-l", "warning"])
            .stdout(Stdio::null())
            .stderr(log),
    );
    (p, admin)
}

/// A counter or gauge from Envoy's admin `/stats`.
pub fn envoy_stat(admin: u16, name: &str) -> Option<u64> {
    let body = ureq::get(&format!("http://127.0.0.1:{admin}/stats?filter=^{name}$"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    body.lines().find_map(|l| {
        l.strip_prefix(&format!("{name}: "))
            .and_then(|v| v.trim().parse().ok())
    })
}
