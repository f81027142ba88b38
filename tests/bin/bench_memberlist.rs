//! Propagation in a mixed cluster of the Go Sidecar and ours (`scripts/bench-memberlist.sh`,
//! root): a health change on one node, until another node's `/api/state.json` shows it.
//! One run measures, side by side, Go->Go, Go->Rust, Rust->Go and Rust->Rust inside one
//! mixed cluster (ours on the memberlist wire), and Rust->Rust in a cluster of ours on the
//! native wire. Latency = when the observer first serves the new status, minus the
//! origin's `Updated` stamp for it (all namespaces share one clock), so the origin's
//! check interval is not counted.
//!
//! `bench-memberlist [CHANGES]` (default 30); `bench-memberlist observe` is the observer
//! it runs inside a node's namespace: it polls 127.0.0.1:7777 every 10 ms and prints a
//! line per status transition.

use sidecar_catalog::Timestamp;
use sidecar_e2e::mixed::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn fetch_state() -> Option<serde_json::Value> {
    let mut s = TcpStream::connect("127.0.0.1:7777").ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /api/state.json HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    serde_json::from_slice(&buf[at + 4..]).ok()
}

fn observe() {
    let mut last: HashMap<(String, String), u64> = HashMap::new();
    let out = std::io::stdout();
    loop {
        if let Some(state) = fetch_state() {
            let now = Timestamp::now().unix_nanos();
            for r in records(&state) {
                let key = (r.host.clone(), r.id.clone());
                if last.get(&key) != Some(&r.status) {
                    last.insert(key, r.status);
                    let updated = Timestamp::parse_rfc3339(&r.updated)
                        .map(|t| t.unix_nanos())
                        .unwrap_or(0);
                    let mut o = out.lock();
                    let _ = writeln!(o, "{now} {} {} {} {updated}", r.host, r.id, r.status);
                    let _ = o.flush();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct Obs {
    host: String,
    status: u64,
    latency_ms: f64,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("observe") {
        observe();
        return;
    }
    let changes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    if let Some(why) = skip_reason() {
        eprintln!("{why}");
        std::process::exit(2);
    }
    let me = std::env::current_exe().expect("own path");
    let mut lab = Lab::new();
    let go1 = lab.host("go1");
    let go2 = lab.host("go2");
    let rs1 = lab.host("rs1");
    let rs2 = lab.host("rs2");
    let seeds = [go1.ip.as_str()];
    let g1 = Node::start(&lab, &go1, Kind::Go, &seeds, &[svc("from-go", 8001, 10001)]);
    g1.wait_up();
    let g2 = Node::start(
        &lab,
        &go2,
        Kind::Go,
        &seeds,
        &[svc("quiet-go", 8002, 10002)],
    );
    let r1 = Node::start(
        &lab,
        &rs1,
        Kind::RustMemberlist,
        &seeds,
        &[svc("from-rs", 8003, 10003)],
    );
    let r2 = Node::start(
        &lab,
        &rs2,
        Kind::RustMemberlist,
        &seeds,
        &[svc("quiet-rs", 8004, 10004)],
    );
    let mut native = Lab::new();
    let nat1 = native.host("nat1");
    let nat2 = native.host("nat2");
    let n1 = Node::start(
        &native,
        &nat1,
        Kind::RustNative,
        &[&nat1.ip],
        &[svc("from-nat", 8005, 10005)],
    );
    let n2 = Node::start(
        &native,
        &nat2,
        Kind::RustNative,
        &[&nat1.ip],
        &[svc("quiet-nat", 8006, 10006)],
    );
    let converged = |n: &Node, want: &[(&str, &str)]| {
        sidecar_e2e::wait_for("convergence", Duration::from_secs(90), || {
            want.iter()
                .all(|(h, s)| n.status_of(h, s) == Some(ALIVE))
                .then_some(())
        })
    };
    let mixed = [
        ("go1", "from-go"),
        ("go2", "quiet-go"),
        ("rs1", "from-rs"),
        ("rs2", "quiet-rs"),
    ];
    for n in [&g1, &g2, &r1, &r2] {
        converged(n, &mixed);
    }
    converged(&n2, &[("nat1", "from-nat"), ("nat2", "quiet-nat")]);
    eprintln!("clusters converged; {changes} changes per origin");

    let (tx, rx) = mpsc::channel::<(String, String)>();
    let mut observers = Vec::new();
    for n in [&g1, &g2, &r1, &r2, &n1, &n2] {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &n.host.ns])
            .arg(&me)
            .arg("observe")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("observer");
        let out = child.stdout.take().expect("stdout");
        let (tx, name) = (tx.clone(), n.host.name.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((name.clone(), line)).is_err() {
                    return;
                }
            }
        });
        observers.push(sidecar_e2e::KillOnDrop(child));
    }
    drop(tx);
    std::thread::sleep(Duration::from_secs(2));
    let start = Timestamp::now().unix_nanos();
    for i in 0..changes {
        let healthy = i % 2 == 1;
        g1.set_healthy("from-go", healthy);
        r1.set_healthy("from-rs", healthy);
        n1.set_healthy("from-nat", healthy);
        // Go checks every 3 s and re-reads discovery every second.
        std::thread::sleep(Duration::from_millis(4500));
    }
    std::thread::sleep(Duration::from_secs(5));
    drop(observers);

    let mut seen: HashMap<(String, String), Vec<Obs>> = HashMap::new();
    for (observer, line) in rx.try_iter() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 5 {
            continue;
        }
        let (Ok(t), Ok(status), Ok(updated)) = (
            f[0].parse::<i128>(),
            f[3].parse::<u64>(),
            f[4].parse::<i128>(),
        ) else {
            continue;
        };
        if updated < start || !(status == ALIVE || status == UNHEALTHY) {
            continue;
        }
        seen.entry((observer, f[1].to_string()))
            .or_default()
            .push(Obs {
                host: f[1].to_string(),
                status,
                latency_ms: (t - updated) as f64 / 1e6,
            });
    }
    println!("| path | wire | changes at origin | seen by observer | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (label, wire, observer, origin) in [
        ("Go -> Go", "memberlist", "go2", "go1"),
        ("Go -> Rust", "memberlist", "rs2", "go1"),
        ("Rust -> Go", "memberlist", "go2", "rs1"),
        ("Rust -> Rust", "memberlist", "rs2", "rs1"),
        ("Rust -> Rust", "native", "nat2", "nat1"),
    ] {
        let mut v: Vec<f64> = seen
            .get(&(observer.to_string(), origin.to_string()))
            .map(|o| {
                o.iter()
                    .filter(|x| x.host == origin && x.status <= 2)
                    .map(|x| x.latency_ms)
                    .collect()
            })
            .unwrap_or_default();
        let n = v.len();
        let at_origin = seen
            .get(&(origin.to_string(), origin.to_string()))
            .map_or(0, Vec::len);
        let (p50, p99) = (pct(&mut v, 50.0), pct(&mut v, 99.0));
        let max = v.iter().copied().fold(f64::NAN, f64::max);
        println!("| {label} | {wire} | {at_origin} | {n} | {p50:.0} | {p99:.0} | {max:.0} |");
    }
    drop((g1, g2, r1, r2, n1, n2));
}
