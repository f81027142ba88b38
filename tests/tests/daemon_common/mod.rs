//! Helpers of the daemon end-to-end tests: an agent with static discovery in a temp dir,
//! HTTP calls that return status, headers and body, and a tiny HTTP server that plays
//! a health-check target or a listener.

#![allow(dead_code)]

use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// A running `sidecar` with static discovery from `dir/static.json`.
pub struct Agent {
    pub proc: KillOnDrop,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub node: String,
    pub gossip_port: u16,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn convert(r: ureq::Response) -> Response {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .filter_map(|n| r.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let body = r.into_string().expect("body");
    Response {
        status,
        headers,
        body,
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .build()
}

pub fn request(method: &str, url: &str) -> Response {
    match agent().request(method, url).call() {
        Ok(r) => convert(r),
        Err(ureq::Error::Status(_, r)) => convert(r),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// A request with headers (and a body, if any), as a browser or a script would send it.
pub fn request_with(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = if body.is_empty() {
        req.call()
    } else {
        req.send_string(body)
    };
    match result {
        Ok(r) => convert(r),
        Err(ureq::Error::Status(_, r)) => convert(r),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

pub fn try_get(url: &str) -> Option<Response> {
    match agent().get(url).call() {
        Ok(r) => Some(convert(r)),
        Err(ureq::Error::Status(_, r)) => Some(convert(r)),
        Err(_) => None,
    }
}

/// The daemon's command line as the tests run it: static discovery from `dir`, API and
/// gossip on loopback, no proxies, stdout discarded (stderr is the caller's to set).
pub fn agent_command(dir: &Path, node: &str, http_port: u16, gossip_port: u16) -> Command {
    let mut cmd = Command::new(sidecar_bin());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_NODE_NAME", node)
        .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
        .env("SIDECAR_BIND_IP", "127.0.0.1")
        .env("SIDECAR_BIND_PORT", gossip_port.to_string())
        .env("SIDECAR_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", dir.join("static.json"))
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .env("RUST_LOG", "info")
        .env(
            "SIDECAR_CACHE_DIR",
            sidecar_e2e::workspace_root().join("target/e2e-plugin-cache"),
        )
        .stdout(Stdio::null());
    cmd
}

impl Agent {
    /// Starts an agent named `node` with `static_json` and extra environment.
    pub fn start(node: &str, static_json: &str, env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("static.json"), static_json).expect("write static.json");
        Self::start_in(dir, node, env)
    }

    pub fn start_in(dir: tempfile::TempDir, node: &str, env: &[(&str, &str)]) -> Agent {
        let http_port = free_port("127.0.0.1");
        let gossip_port = free_port("127.0.0.1");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log file");
        let mut cmd = agent_command(dir.path(), node, http_port, gossip_port);
        cmd.stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = KillOnDrop::spawn(&mut cmd);
        let base = format!("http://127.0.0.1:{http_port}");
        let agent = Agent {
            proc,
            base,
            dir,
            node: node.to_string(),
            gossip_port,
        };
        // Generous: a cold plugin compile cache makes the first start slow.
        wait_for("the agent's HTTP API", WAIT * 4, || {
            try_get(&format!("{}/health", agent.base)).filter(|r| r.status == 200)
        });
        agent
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Response {
        request("GET", &self.url(path))
    }

    pub fn static_file(&self) -> PathBuf {
        self.dir.path().join("static.json")
    }

    /// Replaces static.json atomically (write + rename), as an operator's tool would.
    pub fn write_static(&self, json: &str) {
        let tmp = self.dir.path().join("static.json.tmp");
        std::fs::write(&tmp, json).expect("write");
        std::fs::rename(&tmp, self.static_file()).expect("rename");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Every instance in `/api/services.json`.
    pub fn instances(&self) -> Vec<serde_json::Value> {
        let doc = self.get("/api/services.json").json();
        doc["Services"]
            .as_object()
            .map(|m| {
                m.values()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until an instance named `name` has `status`; returns it.
    pub fn wait_status(&self, name: &str, status: u64) -> serde_json::Value {
        wait_for(
            &format!("{name} with status {status} on {}", self.node),
            WAIT,
            || {
                self.instances()
                    .into_iter()
                    .find(|s| s["Name"] == name && s["Status"] == status)
            },
        )
    }
}

/// One request the test server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: answers every request with `status` and records it.
pub struct TestServer {
    pub port: u16,
    pub status: Arc<AtomicU16>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    pub fn start(status: u16) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let status = Arc::new(AtomicU16::new(status));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, sn) = (status.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, sn) = (st.clone(), sn.clone());
                std::thread::spawn(move || serve(conn, &st, &sn));
            }
        });
        TestServer { port, status, seen }
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(conn: std::net::TcpStream, status: &AtomicU16, seen: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().expect("lock").push(Seen {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let code = status.load(Ordering::SeqCst);
        let resp = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\nok");
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads a stream of concatenated JSON documents (what Go's `json.Decoder` consumes).
pub struct JsonStream {
    reader: BufReader<Box<dyn Read + Send>>,
}

impl JsonStream {
    pub fn open(url: &str, accept: Option<&str>) -> (JsonStream, Response) {
        let mut req = ureq::AgentBuilder::new().build().get(url);
        if let Some(a) = accept {
            req = req.set("Accept", a);
        }
        let resp = req.call().expect("watch");
        let head = Response {
            status: resp.status(),
            headers: resp
                .headers_names()
                .into_iter()
                .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
                .collect(),
            body: String::new(),
        };
        (
            JsonStream {
                reader: BufReader::new(Box::new(resp.into_reader())),
            },
            head,
        )
    }

    /// The next complete JSON document (braces balanced outside strings).
    pub fn next_doc(&mut self) -> String {
        let mut out = Vec::new();
        let (mut depth, mut in_str, mut esc) = (0i64, false, false);
        let mut byte = [0u8; 1];
        loop {
            self.reader.read_exact(&mut byte).expect("stream open");
            let b = byte[0];
            if depth == 0 && b != b'{' {
                continue;
            }
            out.push(b);
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return String::from_utf8(out).expect("utf8");
                    }
                }
                _ => {}
            }
        }
    }

    /// The next SSE `data:` line.
    pub fn next_event(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).expect("stream open") > 0,
                "stream ended"
            );
            if let Some(d) = line.strip_prefix("data: ") {
                return d.trim_end().to_string();
            }
        }
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
