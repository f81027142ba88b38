//! The very first start: every agent gets an empty compile-cache directory, as after an
//! install, an upgrade or in a fresh container.
//!
//! 1. One agent with every default plugin in use (namer, the three check types, both
//!    proxy emitters; HAProxy's verify/reload commands are `true`): spawn -> the API
//!    answers `/api/state.json`, the agent's own "plugins ready" `elapsed_ms`, RSS
//!    (VmRSS) 3 s after the API answered and again once start-up has settled (10 s: the
//!    daemon hands start-up memory back 5 s after its first announcement), and the peak
//!    (VmHWM). Then the same with the cache the first run filled (a warm start).
//! 2. Three agents on 127.0.0.1-3 started at the same moment, one static service each
//!    (AlwaysSuccessful check), joined through the first: spawn -> every service ALIVE
//!    (status 0) in every node's `/api/state.json`.
//!
//! `SIDECAR_BIN=... cargo bench -p sidecar-e2e --bench first_start -- [runs]`
//! (`scripts/bench-start.sh`).

use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} / min {:.1} / max {:.1}",
        pct(&v, 0.5),
        pct(&v, 0.0),
        pct(&v, 1.0)
    )
}

/// (VmRSS, VmHWM) in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The body of a GET, or None while nothing answers.
fn get(url: &str) -> Option<String> {
    ureq::get(url)
        .timeout(Duration::from_millis(500))
        .call()
        .ok()?
        .into_string()
        .ok()
}

/// Polls until `f` is Some, every millisecond; panics after 60 s.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Single {
    api_ms: f64,
    ready_ms: f64,
    idle_rss: f64,
    settled_rss: f64,
    peak_rss: f64,
}

/// One agent with every default on, cache in `cache`.
fn single(dir: &Path, cache: &Path) -> Single {
    std::fs::write(dir.join("static.json"), "[]").expect("static.json");
    let http = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let started = Instant::now();
    let mut cmd = Command::new(sidecar_bin());
    cmd.arg("agent")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_CACHE_DIR", cache)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", dir.join("static.json"))
        .env("SIDECAR_BIND_IP", "127.0.0.1")
        .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
        .env("SIDECAR_BIND_PORT", free_port("127.0.0.1").to_string())
        .env("SIDECAR_HTTP_ADDR", &http)
        .env("ENVOY_GRPC_PORT", free_port("127.0.0.1").to_string())
        .env("HAPROXY_CONFIG_FILE", dir.join("haproxy.cfg"))
        .env("HAPROXY_VERIFY_COMMAND", "true")
        .env("HAPROXY_RELOAD_COMMAND", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut agent = KillOnDrop::spawn(&mut cmd);
    let stderr = agent.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("plugins ready") {
                let _ = tx.send(line);
            }
        }
    });
    let url = format!("http://{http}/api/state.json");
    poll("the API", || get(&url));
    let api_ms = started.elapsed().as_secs_f64() * 1e3;
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a \"plugins ready\" line");
    let ready_ms = line
        .split("elapsed_ms=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    std::thread::sleep(Duration::from_secs(3));
    let (idle_rss, _) = rss_mb(agent.id());
    std::thread::sleep(Duration::from_secs(7));
    let (settled_rss, peak_rss) = rss_mb(agent.id());
    Single {
        api_ms,
        ready_ms,
        idle_rss,
        settled_rss,
        peak_rss,
    }
}

/// Three agents started together; ms from spawn to every service ALIVE everywhere.
fn three(dir: &Path, run: usize) -> f64 {
    let port = free_port("127.0.0.1");
    let mut https = Vec::new();
    let mut agents = Vec::new();
    let started = Instant::now();
    for i in 1..=3 {
        let ip = format!("127.0.0.{i}");
        let http = format!("{ip}:{}", free_port(&ip));
        let file = dir.join(format!("static-{run}-{i}.json"));
        std::fs::write(
            &file,
            format!(
                r#"[{{"Service":{{"Name":"s{i}","Image":"example/s{i}:1","Ports":[{{"Type":"tcp","Port":{},"ServicePort":10000}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}]"#,
                20_000 + i
            ),
        )
        .expect("static");
        let cache = dir.join(format!("cache-{run}-{i}"));
        let mut cmd = sidecar_e2e::bench_agent(i, port, &http, &file);
        cmd.env("SIDECAR_CACHE_DIR", &cache);
        agents.push(KillOnDrop::spawn(&mut cmd));
        https.push(http);
    }
    for http in &https {
        let url = format!("http://{http}/api/state.json");
        poll("every service ALIVE", || {
            let body = get(&url)?;
            let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
            let alive = doc["Servers"]
                .as_object()?
                .values()
                .flat_map(|s| {
                    s["Services"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.values())
                })
                .filter(|svc| svc["Status"] == 0)
                .count();
            (alive >= 3).then_some(())
        });
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    drop(agents);
    ms
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5)
        .max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let cache = dir.path().join(format!("single-cache-{run}"));
        cold.push(single(dir.path(), &cache));
        warm.push(single(dir.path(), &cache));
    }
    println!(
        "| `sidecar agent`, all default plugins ({runs} runs) | first start (empty cache) | warm cache |"
    );
    println!("|---|---|---|");
    type Field = fn(&Single) -> f64;
    let rows: [(&str, Field); 5] = [
        ("spawn -> API answers, ms", |s| s.api_ms),
        ("\"plugins ready\" `elapsed_ms`", |s| s.ready_ms),
        ("RSS after 3 s idle, MB", |s| s.idle_rss),
        ("RSS after 10 s (start-up settled), MB", |s| s.settled_rss),
        ("peak RSS (VmHWM), MB", |s| s.peak_rss),
    ];
    for (name, f) in rows {
        println!(
            "| {name} | {} | {} |",
            summary(cold.iter().map(f).collect()),
            summary(warm.iter().map(f).collect())
        );
    }
    let spreads: Vec<f64> = (0..runs).map(|run| three(dir.path(), run)).collect();
    println!(
        "\n3 agents started together, empty caches: spawn -> every service ALIVE on every node, ms ({runs} runs): {}",
        summary(spreads)
    );
}
