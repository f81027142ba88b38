//! Real processes: N agents (default 50) on 127.0.0.1..N with 10 static services each.
//! Measures a service change -> visible in every node's catalog (each node's
//! `/api/watch` stream, timestamped on arrival; p50/p99 over the changes, measured from
//! the moment the origin's own stream shows it), and RSS and CPU per node while idle.
//!
//! `SIDECAR_BIN=... cargo bench -p sidecar-e2e --bench cluster_real -- [N] [changes]`

use sidecar_e2e::{KillOnDrop, free_port, wait_for};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERVICES: usize = 10;

fn static_json(node: usize, extra: Option<usize>) -> String {
    let mut items: Vec<String> = (0..SERVICES)
        .map(|i| {
            format!(
                r#"{{"Service":{{"Name":"s{i}","Image":"example/s{i}:1","Ports":[{{"Type":"tcp","Port":{},"ServicePort":{}}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}"#,
                20_000 + node * 10 + i,
                10_000 + i
            )
        })
        .collect();
    if let Some(k) = extra {
        items.push(format!(
            r#"{{"Service":{{"Name":"bench-{k}","Image":"example/b:1","Ports":[{{"Type":"tcp","Port":{},"ServicePort":11000}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}"#,
            30_000 + k
        ));
    }
    format!("[{}]", items.join(","))
}

struct Agent {
    proc: KillOnDrop,
    http: String,
    file: PathBuf,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss_kb, ticks)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(50).clamp(2, 250);
    let changes = args.get(1).copied().unwrap_or(40);
    let port = free_port("127.0.0.1");
    let dir = tempfile::tempdir().expect("dir");
    let mut agents = Vec::new();
    for i in 1..=n {
        let ip = format!("127.0.0.{i}");
        let http = format!("{ip}:{}", free_port(&ip));
        let file = dir.path().join(format!("static-{i}.json"));
        std::fs::write(&file, static_json(i, None)).expect("static");
        let mut cmd = sidecar_e2e::bench_agent(i, port, &http, &file);
        agents.push(Agent {
            proc: KillOnDrop::spawn(&mut cmd),
            http,
            file,
        });
    }
    let started = Instant::now();
    let total = n * SERVICES;
    for a in &agents {
        wait_for(
            "the full catalog on every node",
            Duration::from_secs(120),
            || {
                let body = ureq::get(&format!("http://{}/api/state.json", a.http))
                    .call()
                    .ok()?
                    .into_string()
                    .ok()?;
                (body.matches("\"Status\":0").count() >= total).then_some(())
            },
        );
    }
    println!(
        "N={n}: {total} services on every node {:.1} s after start",
        started.elapsed().as_secs_f64()
    );

    // Idle: RSS and CPU per node over 30 s.
    let window = Duration::from_secs(30);
    let before: Vec<(u64, u64)> = agents.iter().map(|a| proc_stat(a.proc.id())).collect();
    std::thread::sleep(window);
    let after: Vec<(u64, u64)> = agents.iter().map(|a| proc_stat(a.proc.id())).collect();
    let tick = 100.0; // USER_HZ
    let mut cpu: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.1 - b.1) as f64 / tick / window.as_secs_f64() * 100.0)
        .collect();
    let mut rss: Vec<f64> = after.iter().map(|a| a.0 as f64 / 1024.0).collect();
    cpu.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    println!(
        "N={n} idle per node: RSS p50 {:.1} MB max {:.1} MB; CPU p50 {:.2} % max {:.2} % of one core",
        pct(&rss, 0.5),
        pct(&rss, 1.0),
        pct(&cpu, 0.5),
        pct(&cpu, 1.0)
    );

    // Watch streams: (node, change, arrival).
    let (tx, rx) = mpsc::channel::<(usize, usize, Instant)>();
    for (idx, a) in agents.iter().enumerate() {
        let url = format!("http://{}/api/watch", a.http);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let Ok(resp) = ureq::get(&url).set("Accept", "text/event-stream").call() else {
                return;
            };
            let mut seen = HashSet::new();
            for line in BufReader::new(resp.into_reader()).lines() {
                let Ok(line) = line else { return };
                let at = Instant::now();
                for part in line.split("\"bench-").skip(1) {
                    let num: String = part.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(k) = num.parse::<usize>()
                        && seen.insert(k)
                        && tx.send((idx, k, at)).is_err()
                    {
                        return;
                    }
                }
            }
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut spreads = Vec::new();
    for k in 0..changes {
        let origin = k % n;
        std::fs::write(&agents[origin].file, static_json(origin + 1, Some(k))).expect("write");
        let mut arrivals: Vec<Option<Instant>> = vec![None; n];
        let deadline = Instant::now() + Duration::from_secs(20);
        while arrivals.iter().any(Option::is_none) && Instant::now() < deadline {
            if let Ok((idx, kk, at)) = rx.recv_timeout(Duration::from_millis(100))
                && kk == k
            {
                arrivals[idx] = Some(at);
            }
        }
        if let (Some(t0), true) = (arrivals[origin], arrivals.iter().all(Option::is_some)) {
            let last = arrivals.iter().flatten().max().copied().unwrap_or(t0);
            spreads.push(last.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        }
        // Put the file back so the next change starts from the same catalog.
        std::fs::write(&agents[origin].file, static_json(origin + 1, None)).expect("write");
        std::thread::sleep(Duration::from_millis(1500));
    }
    spreads.sort_by(f64::total_cmp);
    println!(
        "N={n} change -> visible on every node: p50 {:.0} ms p99 {:.0} ms max {:.0} ms ({} of {changes} changes complete)",
        pct(&spreads, 0.5),
        pct(&spreads, 0.99),
        pct(&spreads, 1.0),
        spreads.len()
    );
    drop(agents);
}
