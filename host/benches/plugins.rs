//! Plugin costs: what a health check through a wasm plugin adds over doing the same
//! work natively, fresh vs warm instances, the Python example plugin, and process start
//! to "plugins ready". Prints a Markdown table (see docs/benchmarks.md).
//!
//! Run: `scripts/bench-plugins.sh` (or `cargo bench -p sidecar --bench plugins`).
//! Everything talks to a keep-alive HTTP server on 127.0.0.1 inside this process.

use sidecar_catalog::Service;
use sidecar_plugin_host::{
    AllocatorChoice, CacheSetting, CheckRequest, CheckStatus, HealthChecker, LoadOptions,
    LoadedPlugins, Runtime,
};
use sidecar_plugin_host::{NamerVars, PluginsConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ITERATIONS: usize = 2000;
const WARMUP: usize = 200;

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats {
        mean,
        p50: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
    }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn row(what: &str, s: &Stats, note: &str) {
    println!(
        "| {what} | {} | {} | {} | {note} |",
        us(s.mean),
        us(s.p50),
        us(s.p99)
    );
}

/// HTTP/1.1 keep-alive server: `/ok` -> 200 "fine", `/json` -> `{"status":"ok"}`.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    port
}

fn serve(conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut writer = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if reader
            .read_line(&mut request_line)
            .map(|n| n == 0)
            .unwrap_or(true)
        {
            return;
        }
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
            line.clear();
        }
        let body = if request_line.contains("/json") {
            r#"{"status":"ok"}"#
        } else {
            "fine"
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

async fn load(text: &str, dir: &Path, allocator: AllocatorChoice) -> LoadedPlugins {
    std::fs::create_dir_all(dir).expect("bench dir");
    let file = dir.join("plugins.toml");
    std::fs::write(&file, text).expect("write plugins.toml");
    let config = PluginsConfig::load(Some(&file), &NamerVars::default()).expect("config");
    let options = LoadOptions {
        cache: CacheSetting::Dir(dir.join("cache")),
        allocator,
        ..LoadOptions::default()
    };
    Runtime::load(&config, &options).await.expect("load")
}

fn request(args: &str) -> CheckRequest {
    CheckRequest {
        service: Service {
            name: "bench".into(),
            ..Service::default()
        },
        args: args.into(),
        timeout: Duration::from_secs(3),
        host_ip: "127.0.0.1".into(),
    }
}

async fn time_checks(
    checker: &Arc<dyn HealthChecker>,
    args: &str,
    n: usize,
    before: impl Fn(),
) -> Stats {
    for _ in 0..WARMUP.min(n) {
        before();
        let r = checker.check(request(args)).await.expect("check");
        assert_eq!(r.status, CheckStatus::Healthy, "{}", r.message);
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        before();
        let started = Instant::now();
        let r = checker.check(request(args)).await.expect("check");
        samples.push(started.elapsed());
        assert_eq!(r.status, CheckStatus::Healthy);
    }
    stats(samples)
}

/// The same GET natively (reqwest, as the host import uses it) and through the
/// check-httpget plugin, interleaved so that machine noise hits both alike.
async fn time_native_vs_plugin(
    checker: &Arc<dyn HealthChecker>,
    url: &str,
    n: usize,
) -> (Stats, Stats, Duration) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    let (mut native, mut wasm) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + WARMUP {
        let started = Instant::now();
        let resp = client.get(url).send().await.expect("GET");
        let ok = resp.status().is_success();
        let _ = resp.bytes().await.expect("body");
        let native_took = started.elapsed();
        assert!(ok);
        let started = Instant::now();
        let r = checker.check(request(url)).await.expect("check");
        let wasm_took = started.elapsed();
        assert_eq!(r.status, CheckStatus::Healthy, "{}", r.message);
        if i >= WARMUP {
            native.push(native_took);
            wasm.push(wasm_took);
        }
    }
    // Median of the paired differences: robust against noise that hits one pair.
    let mut diffs: Vec<i128> = native
        .iter()
        .zip(&wasm)
        .map(|(n, w)| w.as_nanos() as i128 - n.as_nanos() as i128)
        .collect();
    diffs.sort();
    let median = Duration::from_nanos(diffs[diffs.len() / 2].max(0) as u64);
    (stats(native), stats(wasm), median)
}

/// Wall time of `sidecar <args>` (mean of `runs`), with the given cache directory.
fn process_time(args: &[&str], cache: &Path, runs: usize, fresh_cache: bool) -> Duration {
    let bin = env!("CARGO_BIN_EXE_sidecar");
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        if fresh_cache {
            let _ = std::fs::remove_dir_all(cache);
        }
        let started = Instant::now();
        let out = Command::new(bin)
            .args(args)
            .env("SIDECAR_CACHE_DIR", cache)
            .env_remove("SIDECAR_PLUGINS_FILE")
            .output()
            .expect("run sidecar");
        total += started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    total / runs as u32
}

/// `sidecar agent` from spawn to its "plugins ready" log line, with every default on
/// (namer, check types, both proxy emitters). HAProxy's verify and reload commands are
/// `true`, so no haproxy process is started. Returns (wall time to the line, the
/// agent's own `elapsed_ms`), averaged over `runs`.
fn agent_ready(dir: &Path, runs: usize, fresh_cache: bool) -> (Duration, Duration) {
    let bin = env!("CARGO_BIN_EXE_sidecar");
    let cache = dir.join("agent-cache");
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    };
    let (mut wall, mut reported) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..runs {
        if fresh_cache {
            let _ = std::fs::remove_dir_all(&cache);
        }
        std::fs::write(dir.join("static.json"), "[]").expect("static.json");
        let started = Instant::now();
        let mut child = Command::new(bin)
            .arg("agent")
            .env("SIDECAR_CACHE_DIR", &cache)
            .env_remove("SIDECAR_PLUGINS_FILE")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", dir.join("static.json"))
            .env("SIDECAR_BIND_IP", "127.0.0.1")
            .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
            .env("SIDECAR_BIND_PORT", free().to_string())
            .env("SIDECAR_HTTP_ADDR", format!("127.0.0.1:{}", free()))
            .env("ENVOY_GRPC_PORT", free().to_string())
            .env("HAPROXY_CONFIG_FILE", dir.join("haproxy.cfg"))
            .env("HAPROXY_VERIFY_COMMAND", "true")
            .env("HAPROXY_RELOAD_COMMAND", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start sidecar agent");
        let stderr = child.stderr.take().expect("stderr");
        let line = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("plugins ready"));
        wall += started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        let line = line.expect("the agent logs \"plugins ready\"");
        let ms: u64 = line
            .split("elapsed_ms=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no elapsed_ms in {line:?}"));
        reported += Duration::from_millis(ms);
    }
    (wall / runs as u32, reported / runs as u32)
}

fn python_wasm() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples/python_check.wasm");
    path.exists().then_some(path)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let port = server();
    let ok_url = format!("http://127.0.0.1:{port}/ok");
    let json_url = format!("http://127.0.0.1:{port}/json");
    let dir = tempfile::tempdir().expect("tempdir");
    let python = python_wasm();
    let python_table = python
        .as_ref()
        .map(|p| {
            format!(
                "[checks]\nJsonStatus = \"json-status\"\n\n[plugins.json-status]\nwasm = \"{}\"\n\
                 grants = {{ http = [\"127.0.0.1:*\"] }}\n",
                p.display()
            )
        })
        .unwrap_or_default();

    println!("| measurement | mean µs | p50 µs | p99 µs | note |");
    println!("|---|---|---|---|---|");
    for allocator in [AllocatorChoice::Pooling, AllocatorChoice::OnDemand] {
        let alloc = if allocator == AllocatorChoice::Pooling {
            "pooling"
        } else {
            "on-demand"
        };
        let plugins = load(&python_table, &dir.path().join(alloc), allocator).await;
        let httpget = plugins.checker("HttpGet").expect("HttpGet is registered").1;
        let always = plugins
            .checker("AlwaysSuccessful")
            .expect("AlwaysSuccessful is registered")
            .1;

        if allocator == AllocatorChoice::Pooling {
            let (native, wasm, paired) = time_native_vs_plugin(&httpget, &ok_url, ITERATIONS).await;
            row(
                "native GET (reqwest, keep-alive, 127.0.0.1)",
                &native,
                "baseline",
            );
            row(
                "HttpGet check via check-httpget plugin, warm",
                &wasm,
                "same GET through the plugin",
            );
            println!(
                "| **added by the Rust plugin** (median of paired differences) | | **{}** | | p50 difference: {} µs |",
                us(paired),
                us(wasm.p50.saturating_sub(native.p50))
            );
        }
        let warm = time_checks(&always, "", ITERATIONS, || {}).await;
        row(
            &format!("noop check (check-always), warm instance, {alloc}"),
            &warm,
            "",
        );
        let fresh = time_checks(&always, "", ITERATIONS, || plugins.drop_warm_instances()).await;
        row(
            &format!("noop check (check-always), fresh instance, {alloc}"),
            &fresh,
            "drop previous + instantiate + configure + call",
        );
        if python.is_some() {
            let py = plugins
                .checker("JsonStatus")
                .expect("JsonStatus is registered")
                .1;
            let py_warm = time_checks(&py, &json_url, ITERATIONS / 4, || {}).await;
            row(
                &format!("JsonStatus check via Python plugin, warm, {alloc}"),
                &py_warm,
                "GET + json.loads in Python",
            );
            let py_fresh = time_checks(&py, &json_url, 100, || plugins.drop_warm_instances()).await;
            row(
                &format!("JsonStatus check via Python plugin, fresh instance, {alloc}"),
                &py_fresh,
                "",
            );
        }
    }
    if python.is_none() {
        println!("| Python plugin | – | – | – | skipped: run scripts/build-examples.sh |");
    }

    let cache = dir.path().join("process-cache");
    println!();
    println!("| process start -> plugins ready (wall time of the whole process) | ms |");
    println!("|---|---|");
    let (wall, own) = agent_ready(dir.path(), 3, true);
    println!(
        "| `sidecar agent` to \"plugins ready\" (all defaults: namer, 3 check types, 2 proxy emitters), cold cache | {} (agent's own `elapsed_ms`: {}) |",
        ms(wall),
        ms(own)
    );
    agent_ready(dir.path(), 1, false);
    let (wall, own) = agent_ready(dir.path(), 10, false);
    println!(
        "| `sidecar agent` to \"plugins ready\" (all defaults), warm cache | {} (agent's own `elapsed_ms`: {}) |",
        ms(wall),
        ms(own)
    );
    let check_set = ["plugins", "check", "AlwaysSuccessful"];
    println!(
        "| `sidecar plugins check AlwaysSuccessful` (namer and check plugins, no emitters), cold cache | {} |",
        ms(process_time(&check_set, &cache, 3, true))
    );
    process_time(&check_set, &cache, 1, false);
    println!(
        "| `sidecar plugins check AlwaysSuccessful` (namer and check plugins, no emitters), warm cache | {} |",
        ms(process_time(&check_set, &cache, 10, false))
    );
    let list = ["plugins", "list"];
    println!(
        "| `sidecar plugins list` (every embedded plugin), cold cache | {} |",
        ms(process_time(&list, &cache, 3, true))
    );
    process_time(&list, &cache, 1, false);
    println!(
        "| `sidecar plugins list` (every embedded plugin), warm cache | {} |",
        ms(process_time(&list, &cache, 10, false))
    );
}
