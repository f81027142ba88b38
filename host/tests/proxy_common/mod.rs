//! Shared pieces of the proxy driver tests: the emitter plugins compiled natively,
//! backends that answer with their own name, process and HTTP helpers. The tests run
//! the real `haproxy` and `envoy` binaries (`scripts/setup.sh` installs both).

#![allow(dead_code)]

use async_trait::async_trait;
use sidecar::catalog::{Port, PortKind, Service, Status};
use sidecar::plugins::{EmitRequest, Emitted, PluginError, ProxyEmitter, XdsResource};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

/// `$ENVOY_BIN`, else `target/tools/envoy` (scripts/setup.sh setup_envoy).
pub fn envoy_bin() -> PathBuf {
    let p = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools/envoy"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh setup_envoy",
        p.display()
    );
    p
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Alive => "alive",
        Status::Tombstone => "tombstone",
        Status::Unhealthy => "unhealthy",
        Status::Unknown => "unknown",
        Status::Draining => "draining",
    }
}

/// `proxy-envoy`, natively.
pub struct NativeEnvoy(pub proxy_envoy::resources::Settings);

#[async_trait]
impl ProxyEmitter for NativeEnvoy {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let instances: Vec<_> = req
            .services
            .iter()
            .map(|s| proxy_envoy::resources::Instance {
                id: s.id.clone(),
                name: s.name.clone(),
                hostname: s.hostname.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| proxy_envoy::resources::PortSpec {
                        port: p.port,
                        service_port: p.service_port,
                        ip: p.ip.clone(),
                    })
                    .collect(),
                proxy_mode: s.proxy_mode.clone(),
                alive: s.status == Status::Alive,
            })
            .collect();
        let (rs, _) = proxy_envoy::resources::build(&instances, &self.0);
        Ok(Emitted::Xds(
            rs.into_iter()
                .map(|r| XdsResource {
                    type_url: r.type_url,
                    name: r.name,
                    value: r.value,
                })
                .collect(),
        ))
    }
}

/// `proxy-haproxy`, natively.
pub struct NativeHaproxy(pub proxy_haproxy::render::Settings);

#[async_trait]
impl ProxyEmitter for NativeHaproxy {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let instances: Vec<_> = req
            .services
            .iter()
            .map(|s| proxy_haproxy::model::Instance {
                id: s.id.clone(),
                name: s.name.clone(),
                image: s.image.clone(),
                hostname: s.hostname.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| proxy_haproxy::model::PortSpec {
                        kind: p.kind.as_str().to_string(),
                        port: p.port,
                        service_port: p.service_port,
                        ip: p.ip.clone(),
                    })
                    .collect(),
                proxy_mode: s.proxy_mode.clone(),
                status: status_name(s.status).to_string(),
                updated: s.updated.to_rfc3339(),
            })
            .collect();
        proxy_haproxy::render::render(&self.0, &instances, &req.hostname, &req.cluster_name)
            .map(|(text, _)| Emitted::ConfigFile(text))
            .map_err(|message| PluginError::Failed {
                plugin: "proxy-haproxy".into(),
                message,
            })
    }
}

/// An emitter that wraps another and can be switched to produce extra resources.
pub struct Tamper {
    pub inner: Arc<dyn ProxyEmitter>,
    pub extra: parking_lot::Mutex<Vec<XdsResource>>,
}

#[async_trait]
impl ProxyEmitter for Tamper {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        match self.inner.emit(req).await? {
            Emitted::Xds(mut list) => {
                list.extend(self.extra.lock().iter().cloned());
                Ok(Emitted::Xds(list))
            }
            other => Ok(other),
        }
    }
}

pub fn service(id: &str, name: &str, mode: &str, port: u16, service_port: u16) -> Service {
    Service {
        id: id.into(),
        name: name.into(),
        image: format!("{name}:1"),
        ports: vec![Port {
            kind: PortKind::Tcp,
            port,
            service_port,
            ip: "127.0.0.1".into(),
        }],
        proxy_mode: mode.into(),
        status: Status::Alive,
        ..Service::default()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A backend answering every HTTP request (or TCP connection, after reading a line)
/// with `name`. Stops when dropped.
pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (name, flag) = (name.to_string(), stop.clone());
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let name = name.clone();
                        std::thread::spawn(move || serve(conn, &name));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend { port, stop }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, name: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Keep-alive: answer every request on the connection.
    loop {
        while !(buf.windows(4).any(|w| w == b"\r\n\r\n")
            || (buf.ends_with(b"\n") && !buf.starts_with(b"GET")))
        {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let reply = if buf.starts_with(b"GET") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{name}",
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

/// `GET path` on a new connection; `(status, body)`.
pub fn http_get(port: u16, ip: &str) -> Option<(u16, String)> {
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
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

/// A line over raw TCP; the first line of the answer.
pub fn tcp_line(port: u16, ip: &str) -> Option<String> {
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

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(
            cmd.stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Envoy with a bootstrap pointing at `ads_port`; its admin port.
pub fn start_envoy(dir: &std::path::Path, ads_port: u16, node: &str) -> (Proc, u16) {
    let admin = free_port();
    let yaml = sidecar::proxy::xds::bootstrap::bootstrap_yaml(
        &sidecar::proxy::xds::bootstrap::BootstrapOptions {
            node_id: node.into(),
            node_cluster: "test".into(),
            ads: format!("127.0.0.1:{ads_port}").parse().expect("addr"),
            admin: Some(format!("127.0.0.1:{admin}").parse().expect("addr")),
        },
    );
    let path = dir.join(format!("envoy-{node}.yaml"));
    std::fs::write(&path, yaml).expect("bootstrap");
    let log = std::fs::File::create(dir.join(format!("envoy-{node}.log"))).expect("log");
    let p = Proc::spawn(
        Command::new(envoy_bin())
            .arg("-c")
            .arg(&path)
            .args(["--disable-hot-restart", "-l", "warning"])
            .stdout(Stdio::null())
            .stderr(log),
    );
    (p, admin)
}

/// GET on Envoy's admin interface.
pub fn admin_get(admin: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", admin)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// One counter from Envoy's `/stats`.
pub fn envoy_stat(admin: u16, name: &str) -> Option<u64> {
    admin_get(admin, &format!("/stats?filter=^{name}$"))
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .and_then(|v| v.trim().parse().ok())
        })
}
