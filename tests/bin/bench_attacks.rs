//! Attack benchmark: each attack of the blast-radius table replayed against a fresh
//! two-node cluster (victim + observer, keyed, on loopback) while the victim's API is
//! polled every 20 ms. Prints, per attack: the victim's peak RSS, its API latency during
//! the attack (p50 / max, and requests that took over 1 s or failed), and whether the
//! observer still routes the victim's service to its real address afterwards.
//!
//! Must run inside a network namespace with only loopback (`scripts/bench-attacks.sh`
//! does `unshare --net`): forged members carry arbitrary addresses.
//!
//! Usage: bench-attacks SIDECAR_BIN [ATTACK ...]   (default: every attack)

use sidecar_catalog::{Service, Status, Timestamp};
use sidecar_cluster::wire::{Item, MemberUpdate, State};
use sidecar_e2e::forge::{self, Forger};
use sidecar_e2e::{KillOnDrop, free_port};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=";
const ATTACKS: &[&str] = &[
    "idle",
    "random-datagrams",
    "future-records",
    "huge-generation",
    "want-flood",
    "oversized-frames",
    "member-flood",
    "record-flood",
    "half-sent-http",
    "stalled-sse",
];

struct Node {
    proc: KillOnDrop,
    http: SocketAddr,
    gossip: SocketAddr,
    _dir: tempfile::TempDir,
}

fn start(bin: &Path, name: &str, static_json: &str, seed: Option<SocketAddr>) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("static.json"), static_json).expect("static.json");
    let http = SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1")));
    let gossip = SocketAddr::from(([127, 0, 0, 1], free_port("127.0.0.1")));
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_NODE_NAME", name)
        .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
        .env("SIDECAR_BIND_IP", "127.0.0.1")
        .env("SIDECAR_BIND_PORT", gossip.port().to_string())
        .env("SIDECAR_HTTP_ADDR", http.to_string())
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", dir.path().join("static.json"))
        .env("SIDECAR_ENCRYPTION_KEYS", KEY)
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(s) = seed {
        cmd.env("SIDECAR_SEEDS", s.to_string());
    }
    let node = Node {
        proc: KillOnDrop::spawn(&mut cmd),
        http,
        gossip,
        _dir: dir,
    };
    wait("the API", Duration::from_secs(60), || {
        get(node.http, "/health", Duration::from_secs(1)).map(|_| ())
    });
    node
}

fn wait<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            eprintln!("timed out waiting for {what}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A plain HTTP/1.1 GET on a fresh connection: the body, or None on any failure or timeout.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    out.starts_with(b"HTTP/1.1 200")
        .then(|| out[split + 4..].to_vec())
}

fn record(node: &Node, host: &str, id: &str) -> Option<Service> {
    let body = get(node.http, "/api/state.json", Duration::from_secs(2))?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    serde_json::from_value(v["Servers"][host]["Services"][id].clone()).ok()
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Polls the API every 20 ms until stopped; returns the latencies (None: over 1 s or failed).
fn poll(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Option<Duration>>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            let ok = get(addr, "/api/state.json", Duration::from_secs(1)).is_some();
            out.push(ok.then(|| t.elapsed()));
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    })
}

fn attack(name: &str, victim: &Node, web: &Service) {
    let insider = || Forger::new("default", "mallory", Some(KEY)).expect("forger");
    match name {
        "idle" => std::thread::sleep(Duration::from_secs(3)),
        "random-datagrams" => {
            let f = Forger::new("default", "mallory", None).expect("forger");
            f.random_datagrams(victim.gossip, 20_000, |_| {});
        }
        "future-records" => {
            let f = insider();
            for i in 0..5_000u32 {
                let mut evil = web.clone();
                evil.ports[0].ip = "127.0.0.66".into();
                evil.updated = if i % 2 == 0 {
                    Timestamp::from_unix_secs(i64::MAX / 1_000_000_000)
                } else {
                    Timestamp::now()
                };
                let _ = f.record(victim.gossip, "victim", evil);
            }
        }
        "huge-generation" => {
            let f = insider();
            for _ in 0..100 {
                let _ = f.datagram(
                    victim.gossip,
                    &[Item::Member(MemberUpdate {
                        key: Arc::from("observer"),
                        addr: victim.gossip,
                        generation: u64::MAX,
                        inc: u32::MAX,
                        state: State::Dead,
                        from: None,
                    })],
                );
            }
        }
        "want-flood" => {
            let f = insider();
            let payload = f.want_flood(1_000_000);
            let _ = f.stream(victim.gossip, &payload, Duration::from_secs(10));
        }
        "oversized-frames" => {
            let held = forge::oversized_frames(victim.gossip, 8, 64 << 20);
            std::thread::sleep(Duration::from_secs(2));
            drop(held);
        }
        "member-flood" => {
            let f = insider();
            let payload = f.member_flood(200_000);
            let _ = f.stream(victim.gossip, &payload, Duration::from_secs(10));
        }
        "record-flood" => {
            let f = insider();
            let payload = f.record_flood(100_000, web);
            let _ = f.stream(victim.gossip, &payload, Duration::from_secs(10));
        }
        "half-sent-http" => {
            let mut held = Vec::new();
            for _ in 0..2_000 {
                if let Ok(mut s) = TcpStream::connect(victim.http) {
                    let _ = s.write_all(b"GET /api/state.json HTTP/1.1\r\nHost: x\r\n");
                    held.push(s);
                }
            }
            std::thread::sleep(Duration::from_secs(3));
        }
        "stalled-sse" => {
            let mut held = Vec::new();
            for _ in 0..500 {
                if let Ok(mut s) = TcpStream::connect(victim.http) {
                    let _ = s.write_all(
                        b"GET /api/watch HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
                    );
                    held.push(s);
                }
            }
            std::thread::sleep(Duration::from_secs(3));
        }
        other => {
            eprintln!("unknown attack {other}; known: {ATTACKS:?}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(bin) = args.first().map(PathBuf::from) else {
        eprintln!("usage: bench-attacks SIDECAR_BIN [ATTACK ...]  (attacks: {ATTACKS:?})");
        std::process::exit(2);
    };
    let up = Command::new("ip")
        .args(["-o", "addr", "show", "up"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if up.is_empty()
        || up
            .lines()
            .any(|l| l.split_whitespace().nth(1) != Some("lo"))
    {
        eprintln!("run me inside a loopback-only network namespace (scripts/bench-attacks.sh)");
        std::process::exit(2);
    }
    let chosen: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(String::as_str).collect()
    } else {
        ATTACKS.to_vec()
    };
    println!(
        "| attack | victim peak RSS | API p50 / max during the attack | API requests over 1 s or failed | observer routes the victim's service correctly after |"
    );
    println!("|---|---|---|---|---|");
    for name in chosen {
        let victim = start(
            &bin,
            "victim",
            r#"[{"Service":{"ID":"web-1","Name":"web","Ports":[{"Type":"tcp","Port":9300,"ServicePort":10300}]},"Check":{"Type":"AlwaysSuccessful"}}]"#,
            None,
        );
        let observer = start(&bin, "observer", "[]", Some(victim.gossip));
        let web = wait("web on the observer", Duration::from_secs(30), || {
            record(&observer, "victim", "web-1").filter(|s| s.status == Status::Alive)
        });
        let stop = Arc::new(AtomicBool::new(false));
        let poller = poll(victim.http, stop.clone());
        attack(name, &victim, &web);
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::SeqCst);
        let mut lat = poller.join().unwrap_or_default();
        let slow = lat.iter().filter(|l| l.is_none()).count();
        let total = lat.len();
        let mut ok: Vec<Duration> = lat.drain(..).flatten().collect();
        ok.sort();
        let p50 = ok.get(ok.len() / 2).copied().unwrap_or_default();
        let max = ok.last().copied().unwrap_or_default();
        let peak = status_kb(victim.proc.0.id(), "VmHWM:");
        // Correct within 15 s of the attack's end (a refutation takes a gossip round).
        let deadline = Instant::now() + Duration::from_secs(15);
        let routes = loop {
            let right = record(&observer, "victim", "web-1")
                .is_some_and(|r| r.ports[0].ip == web.ports[0].ip && r.status == Status::Alive);
            if right || Instant::now() > deadline {
                break right;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        println!(
            "| {name} | {:.1} MB | {:.1} ms / {:.1} ms | {slow} of {total} | {} |",
            peak as f64 / 1024.0,
            p50.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            if routes { "yes" } else { "NO" },
        );
    }
}
