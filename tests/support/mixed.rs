//! A lab for mixed clusters: the real Go Sidecar (`../shared/tools/go-sidecar/`) and
//! ours, each node in its own network namespace (the Go binary's HTTP port is fixed at
//! 7777 and its node name is the host name, so Go nodes also get their own UTS
//! namespace), joined by veth pairs to a bridge that lives in a "switch" namespace of
//! its own. Keeping the bridge out of the host namespace means the host's iptables
//! (Docker's FORWARD policy DROP) never sees the frames: no host firewall rule to add
//! or forget. Everything is removed when the lab is dropped.

use crate::{KillOnDrop, sidecar_bin, workspace_root};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const ALIVE: u64 = 0;
pub const TOMBSTONE: u64 = 1;
pub const UNHEALTHY: u64 = 2;
pub const DRAINING: u64 = 4;
pub const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// The Go tools folder, if present.
pub fn go_tools() -> Option<PathBuf> {
    let dir = workspace_root().parent()?.join("shared/tools/go-sidecar");
    dir.join("sidecar-e97b4225").exists().then_some(dir)
}

/// Why this machine cannot run the mixed-cluster tests, if it cannot.
pub fn skip_reason() -> Option<String> {
    if go_tools().is_none() {
        return Some(
            "../shared/tools/go-sidecar/ (the Go Sidecar binaries) is absent: skipping the \
             mixed-cluster test"
                .into(),
        );
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !root || !netns {
        return Some("the mixed-cluster tests need root and `ip netns`: skipping".into());
    }
    None
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ip {}: {}",
        args.join(" "),
        out.map(|o| String::from_utf8_lossy(&o.stderr).to_string())
            .unwrap_or_default()
    );
}

static LABS: AtomicU32 = AtomicU32::new(0);

/// The switch namespace with its bridge, and the hosts plugged into it.
pub struct Lab {
    pub tag: String,
    sw: String,
    namespaces: Vec<String>,
    hosts: u8,
    pub dir: tempfile::TempDir,
}

/// One network namespace with an address on the lab's bridge.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub ip: String,
    pub name: String,
}

impl Lab {
    pub fn new() -> Lab {
        let tag = format!(
            "ml{}x{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let sw = format!("{tag}sw");
        ip(&["netns", "add", &sw]);
        let lab = Lab {
            tag,
            sw: sw.clone(),
            namespaces: vec![sw.clone()],
            hosts: 0,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        lab
    }

    /// A new namespace `name` on the bridge (10.199.0.N/24).
    pub fn host(&mut self, name: &str) -> Host {
        self.hosts += 1;
        let i = self.hosts;
        let ns = format!("{}{name}", self.tag);
        ip(&["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let port = format!("p{i}");
        ip(&[
            "-n", &self.sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]);
        let addr = format!("10.199.0.{i}");
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &self.sw, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.sw, "link", "set", &port, "up"]);
        Host {
            ns,
            ip: addr,
            name: name.to_string(),
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A static service: name, port, and whether its External check passes (a flag file).
#[derive(Clone, Debug)]
pub struct Svc {
    pub name: String,
    pub port: u16,
    pub service_port: u16,
}

pub fn svc(name: &str, port: u16, service_port: u16) -> Svc {
    Svc {
        name: name.into(),
        port,
        service_port,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Go,
    /// Ours on the memberlist wire (also accepting the native one).
    RustMemberlist,
    /// Ours on the native wire.
    RustNative,
}

/// A sidecar (Go or ours) running in a host's namespace, HTTP on 7777 there.
pub struct Node {
    pub host: Host,
    pub kind: Kind,
    proc: Option<KillOnDrop>,
    pub dir: PathBuf,
    pub services: Vec<Svc>,
}

impl Node {
    pub fn start(lab: &Lab, host: &Host, kind: Kind, seeds: &[&str], services: &[Svc]) -> Node {
        let dir = lab.dir.path().join(&host.name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let mut node = Node {
            host: host.clone(),
            kind,
            proc: None,
            dir,
            services: services.to_vec(),
        };
        for s in services {
            node.set_healthy(&s.name, true);
        }
        node.write_static();
        node.spawn(seeds);
        node
    }

    fn flag(&self, name: &str) -> PathBuf {
        self.dir.join(format!("healthy-{name}"))
    }

    pub fn set_healthy(&self, name: &str, ok: bool) {
        if ok {
            std::fs::write(self.flag(name), b"ok").expect("flag");
        } else {
            let _ = std::fs::remove_file(self.flag(name));
        }
    }

    fn write_static(&self) {
        let items: Vec<String> = self
            .services
            .iter()
            .map(|s| {
                format!(
                    r#"{{"Service":{{"Name":"{}","Image":"example/{}:1","ProxyMode":"http","Ports":[{{"Type":"tcp","Port":{},"ServicePort":{}}}]}},"Check":{{"Type":"External","Args":"test -f {}"}}}}"#,
                    s.name,
                    s.name,
                    s.port,
                    s.service_port,
                    self.flag(&s.name).display()
                )
            })
            .collect();
        std::fs::write(
            self.dir.join("static.json"),
            format!("[{}]", items.join(",")),
        )
        .expect("static.json");
    }

    fn spawn(&mut self, seeds: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .expect("log");
        let log2 = log.try_clone().expect("log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host.ns])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", self.dir.join("static.json"))
            .env("HAPROXY_DISABLE", "true")
            .env("SIDECAR_SEEDS", seeds.join(","))
            .env("SIDECAR_ADVERTISE_IP", &self.host.ip)
            .stdout(log)
            .stderr(log2);
        match self.kind {
            Kind::Go => {
                let bin = go_tools().expect("go tools").join("sidecar-e97b4225");
                cmd.env("ENVOY_USE_GRPC_API", "false")
                    .args(["unshare", "-u", "--", "sh", "-c"])
                    .arg(format!(
                        "hostname {} && exec {}",
                        self.host.name,
                        bin.display()
                    ));
            }
            Kind::RustMemberlist | Kind::RustNative => {
                cmd.env("ENVOY_USE_GRPC_API", "false")
                    .env("RUST_LOG", "info")
                    .env("SIDECAR_ENCRYPTION_KEYS", KEY)
                    // The lab starts nodes together; a node of ours may look for its
                    // seed before the seed listens (the exit on a failed start-up join
                    // has its own test, daemon_join.rs).
                    .env("SIDECAR_JOIN_RETRY", "true")
                    .env(
                        "SIDECAR_GOSSIP_WIRE",
                        if self.kind == Kind::RustMemberlist {
                            "memberlist"
                        } else {
                            "native"
                        },
                    )
                    .arg(sidecar_bin())
                    .args(["agent", "--node-name", &self.host.name])
                    .args(["--http-addr", "0.0.0.0:7777"]);
            }
        }
        self.proc = Some(KillOnDrop::spawn(&mut cmd));
    }

    /// Waits until the node's HTTP API answers (a Go node exits when no seed answers,
    /// so a seed must be up before the nodes that join through it start).
    pub fn wait_up(&self) -> &Self {
        crate::wait_for(
            &format!("{} ({:?}) to serve its API", self.host.name, self.kind),
            Duration::from_secs(60),
            || self.get("/api/state.json").map(|_| ()),
        );
        self
    }

    /// Restarts the node as `kind` (same host, same services).
    pub fn restart_as(&mut self, kind: Kind, seeds: &[&str]) {
        self.stop();
        self.kind = kind;
        self.spawn(seeds);
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.proc = None;
    }

    /// SIGTERM, then wait (at most 15 s) for the process to exit.
    pub fn stop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &p.id().to_string()])
                .status();
            for _ in 0..150 {
                if !p.is_running() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.proc = None;
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host.ns, "curl", "-sf", "-m", "5"])
            .arg(format!("http://127.0.0.1:7777{path}"))
            .stderr(Stdio::null())
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// POSTs and returns the HTTP status.
    pub fn post(&self, path: &str) -> Option<u16> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host.ns, "curl", "-s", "-m", "5"])
            .args(["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .arg(format!("http://127.0.0.1:7777{path}"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Every record in this node's `/api/state.json`: (host, name, id, status).
    pub fn records(&self) -> Option<Vec<Rec>> {
        Some(records(&self.get("/api/state.json")?))
    }

    /// Status of `host`'s instance of `name` as this node sees it.
    pub fn status_of(&self, host: &str, name: &str) -> Option<u64> {
        let mut recs: Vec<Rec> = self
            .records()?
            .into_iter()
            .filter(|r| r.host == host && r.name == name)
            .collect();
        // A restarted Go node has new IDs: the newest record is the current one.
        recs.sort_by(|a, b| a.updated.cmp(&b.updated));
        recs.last().map(|r| r.status)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- {} ({:?}) log tail -----\n{}",
                self.host.name,
                self.kind,
                self.log_tail(40)
            );
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub host: String,
    pub name: String,
    pub id: String,
    pub status: u64,
    pub updated: String,
}

pub fn records(state: &Value) -> Vec<Rec> {
    let mut out = Vec::new();
    if let Some(servers) = state["Servers"].as_object() {
        for (host, server) in servers {
            if let Some(svcs) = server["Services"].as_object() {
                for (id, s) in svcs {
                    out.push(Rec {
                        host: host.clone(),
                        name: s["Name"].as_str().unwrap_or_default().to_string(),
                        id: id.clone(),
                        status: s["Status"].as_u64().unwrap_or(99),
                        updated: s["Updated"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
        }
    }
    out
}

/// Writes a file atomically (static discovery re-reads it).
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}
