//! Cluster benchmarks in the deterministic simulator (virtual time, real core and
//! catalog code) over the network profiles of [`Profile`]. Figures go to
//! docs/benchmarks.md.
//!
//! `cargo bench -p sidecar-cluster --features sim --bench cluster -- [N ...]` (default 100 1000 10000);
//! `scripts/bench-cluster.sh` runs it. Environment:
//! * `BENCH_NET`: profiles to run, `lan wan` by default;
//! * `BENCH_CFG`: `after` (the default configuration, the default) and/or `before`
//!   (the configuration before issue 15: slower probes, longer suspicion, records
//!   retransmitted memberlist-style instead of broadcast trees), run one after the other;
//! * `BENCH_ONLY`: one of `dissemination`, `crash`, `false`, `bandwidth`;
//! * `BENCH_WINDOW`: seconds of warm-up, idle and churn of the bandwidth run;
//! * `BENCH_CHANGES`, `BENCH_CRASHES`: fewer (or more) changes and crashes than the
//!   defaults per N (shorter runs on a busy machine);
//! * `BENCH_SET`: overrides, e.g. `probe_ms=400,timeout_ms=200,susp=0.8,indirect=4,tree=8`.

use sidecar_catalog::Status;
use sidecar_cluster::sim::network::Profile;
use sidecar_cluster::sim::scenario::service;
use sidecar_cluster::sim::{Sim, SimConfig};
use sidecar_cluster::swim::rng::Rng;
use sidecar_cluster::swim::{CoreStats, Micros, SwimConfig};
use std::time::{Duration, Instant};

const S: Micros = 1_000_000;

fn pct(sorted: &[Micros], p: f64) -> Micros {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(us: Micros) -> String {
    format!("{:.0} ms", us as f64 / 1000.0)
}

/// Services per node in the catalogs for the bandwidth runs (memory and simulation time
/// bound the large cases: 10 at N=100 as the target requires, 1 at 1,000, none at
/// 10,000). Propagation and crash runs at N > 100 start with empty catalogs.
fn services_per_node(n: usize) -> usize {
    match n {
        0..=100 => 10,
        101..=1000 => 1,
        _ => 0,
    }
}

/// One configuration of one run: the network profile and the core's settings.
#[derive(Clone)]
struct Setup {
    profile: Profile,
    swim: SwimConfig,
    label: String,
}

/// The defaults before issue 15 (probe every 500 ms, 300 ms ack window, 3 relays,
/// suspicion 1.5 s × log10 N, records retransmitted `4 × log10 N` times).
fn before() -> SwimConfig {
    SwimConfig {
        probe_interval: Duration::from_millis(500),
        probe_timeout: Duration::from_millis(300),
        indirect_checks: 3,
        suspicion_mult: 1.5,
        suspicion_floor: Duration::ZERO,
        tree_fanout: 0,
        ..SwimConfig::default()
    }
}

fn apply_overrides(c: &mut SwimConfig, spec: &str) {
    for kv in spec.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let num: f64 = v.parse().unwrap_or_else(|_| panic!("BENCH_SET: {kv}"));
        match k {
            "probe_ms" => c.probe_interval = Duration::from_millis(num as u64),
            "timeout_ms" => c.probe_timeout = Duration::from_millis(num as u64),
            "attempts" => c.direct_attempts = num as u32,
            "indirect" => c.indirect_checks = num as usize,
            "susp" => c.suspicion_mult = num,
            "floor_ms" => c.suspicion_floor = Duration::from_millis(num as u64),
            "confirm" => c.confirmations = num as u32,
            "tree" => c.tree_fanout = num as usize,
            "lazy" => c.lazy_fanout = num as usize,
            "graft_ms" => c.graft_wait = Duration::from_millis(num as u64),
            _ => panic!("BENCH_SET: unknown {k}"),
        }
    }
}

fn sim(s: &Setup, n: usize, seed: u64) -> Sim {
    sim_with(s, n, seed, if n <= 100 { services_per_node(n) } else { 0 })
}

fn sim_with(s: &Setup, n: usize, seed: u64, k: usize) -> Sim {
    let mut cfg = SimConfig::new(n, seed);
    cfg.swim = s.swim.clone();
    cfg.network = s.profile.network();
    cfg.preload = true;
    cfg.seeds = vec![];
    let mut sim = Sim::new(cfg);
    if k > 0 {
        for id in 0..n as u32 {
            sim.set_local(id, (0..k).map(|i| service(id, i, Status::Alive)).collect());
        }
    }
    sim
}

fn dissemination(s: &Setup, n: usize, changes: usize, window: Micros) {
    let wall = Instant::now();
    let mut sim = sim(s, n, 11);
    let mut rng = Rng::new(5);
    sim.run_until(30 * S);
    let (mut t999, mut t100) = (Vec::new(), Vec::new());
    for c in 0..changes {
        let node = rng.below(n) as u32;
        let svc = service(node, 1000 + c, Status::Alive);
        sim.track(&svc.hostname, &svc.id);
        let mut list = sim.nodes[node as usize].local.clone();
        list.push(svc.clone());
        sim.set_local(node, list);
        let start = sim.now;
        sim.run_until(start + 5 * S);
        let t = sim
            .tracked
            .remove(&(svc.hostname.clone(), svc.id.clone()))
            .unwrap_or_default();
        let mut a = t.arrivals;
        a.sort_unstable();
        let others = n - 1;
        let need = ((others as f64) * 0.999).ceil() as usize;
        t999.push(
            a.get(need.saturating_sub(1))
                .copied()
                .unwrap_or(Micros::MAX),
        );
        t100.push(if a.len() >= others {
            a[others - 1]
        } else {
            Micros::MAX
        });
    }
    t999.sort_unstable();
    t100.sort_unstable();
    let missed = t100.iter().filter(|t| **t == Micros::MAX).count();
    println!(
        "{} N={n:>5} change -> 99.9%: p50 {} p99 {} | -> 100%: p50 {} p99 {} (missed within {} s: {missed}/{changes}) [{} changes, {:.0} s wall]",
        s.label,
        ms(pct(&t999, 0.5)),
        ms(pct(&t999, 0.99)),
        ms(pct(&t100, 0.5)),
        ms(pct(&t100, 0.99)),
        window / S,
        changes,
        wall.elapsed().as_secs_f64()
    );
}

fn crash_detection(s: &Setup, n: usize, crashes: usize, window: Micros) {
    let wall = Instant::now();
    let mut sim = sim(s, n, 23);
    let mut rng = Rng::new(7);
    sim.run_until(10 * S);
    let (mut t99, mut t100, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..crashes {
        let mut node = rng.below(n) as u32;
        while !sim.nodes[node as usize].is_up() {
            node = rng.below(n) as u32;
        }
        sim.crash(node);
        sim.track_down(node);
        let start = sim.now;
        sim.run_until(start + window);
        let t = sim.downs.remove(&node).unwrap_or_default();
        let mut a = t.arrivals;
        a.sort_unstable();
        let live = sim.up_nodes().count();
        let need = ((live as f64) * 0.99).ceil() as usize;
        first.push(a.first().copied().unwrap_or(Micros::MAX));
        t99.push(
            a.get(need.saturating_sub(1))
                .copied()
                .unwrap_or(Micros::MAX),
        );
        t100.push(
            a.get(live.saturating_sub(1))
                .copied()
                .unwrap_or(Micros::MAX),
        );
    }
    for v in [&mut t99, &mut t100, &mut first] {
        v.sort_unstable();
    }
    println!(
        "{} N={n:>5} crash -> first declares dead: p50 {} | -> 99% of nodes: p50 {} p99 {} | -> 100%: p99 {} [{} crashes, {:.0} s wall]",
        s.label,
        ms(pct(&first, 0.5)),
        ms(pct(&t99, 0.5)),
        ms(pct(&t99, 0.99)),
        ms(pct(&t100, 0.99)),
        crashes,
        wall.elapsed().as_secs_f64()
    );
}

/// Bytes per node per second (sent + received, with the 29-byte encrypted envelope,
/// TCP/IP headers not counted) over `window`, idle and with 1 % of services changing
/// per minute (counted as if every node had 10 services).
fn bandwidth(s: &Setup, n: usize, window: Micros, warmup: Micros) {
    let wall = Instant::now();
    let mut sim = sim_with(s, n, 31, services_per_node(n));
    let mut rng = Rng::new(9);
    sim.run_until(warmup);
    let before = sim.total_bytes();
    let start = sim.now;
    sim.run_until(start + window);
    let idle = (sim.total_bytes() - before) as f64 / n as f64 / (window as f64 / S as f64);

    // 1 %/min of N×10 services: one status flip or new service every 1/λ seconds.
    let lambda = n as f64 * 10.0 * 0.01 / 60.0;
    let before = sim.total_bytes();
    let start = sim.now;
    let mut t = start;
    let mut c = 0usize;
    loop {
        t += (S as f64 / lambda) as Micros;
        if t > start + window {
            break;
        }
        sim.run_until(t);
        let node = rng.below(n) as u32;
        let mut list = sim.nodes[node as usize].local.clone();
        if list.is_empty() || rng.chance(0.2) {
            list.push(service(node, 2000 + c, Status::Alive));
        } else {
            let i = rng.below(list.len());
            list[i].status = if list[i].status == Status::Alive {
                Status::Unhealthy
            } else {
                Status::Alive
            };
        }
        c += 1;
        sim.set_local(node, list);
    }
    let grafts_before = totals(&sim).grafts;
    sim.run_until(start + window);
    let churn = (sim.total_bytes() - before) as f64 / n as f64 / (window as f64 / S as f64);
    println!(
        "{} N={n:>5} bytes/node/s (tx+rx): idle {:.0} B/s, 1%/min churn {:.0} B/s ({} changes in {} s; {} services/node; {} grafts) [{:.0} s wall]",
        s.label,
        idle,
        churn,
        c,
        window / S,
        services_per_node(n),
        totals(&sim).grafts - grafts_before,
        wall.elapsed().as_secs_f64()
    );
}

/// Protocol counters summed over the nodes that are up.
fn totals(sim: &Sim) -> CoreStats {
    let mut t = CoreStats::default();
    for st in sim
        .nodes
        .iter()
        .filter_map(|n| n.core.as_ref().map(|c| c.stats()))
    {
        t.probe_failures += st.probe_failures;
        t.deaths_declared += st.deaths_declared;
        t.refutations += st.refutations;
        t.grafts += st.grafts;
    }
    t
}

/// False suspicions: nobody crashes, but 10 % of datagrams are lost (on top of the
/// profile's latency); counts probes that failed (each makes its target suspect),
/// refutations, and members declared dead over `window`.
fn false_suspicions(s: &Setup, n: usize, window: Micros) {
    let wall = Instant::now();
    let mut cfg = SimConfig::new(n, 41);
    cfg.swim = s.swim.clone();
    cfg.network = s.profile.network();
    cfg.network.loss = 0.10;
    cfg.preload = true;
    cfg.seeds = vec![];
    let mut sim = Sim::new(cfg);
    sim.run_until(10 * S);
    let a = totals(&sim);
    sim.run_until(10 * S + window);
    let b = totals(&sim);
    println!(
        "{} N={n:>5} 10% loss, no crash, {} s: failed probes (suspicions raised) {}, refutations {}, declared dead {} [{:.0} s wall]",
        s.label,
        window / S,
        b.probe_failures - a.probe_failures,
        b.refutations - a.refutations,
        b.deaths_declared - a.deaths_declared,
        wall.elapsed().as_secs_f64()
    );
}

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ns = if ns.is_empty() {
        vec![100, 1000, 10_000]
    } else {
        ns
    };
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let profiles: Vec<Profile> = env("BENCH_NET", "lan wan")
        .split_whitespace()
        .map(|p| Profile::parse(p).unwrap_or_else(|| panic!("BENCH_NET: {p}")))
        .collect();
    let set = env("BENCH_SET", "");
    let mut setups = Vec::new();
    for c in env("BENCH_CFG", "after").split_whitespace() {
        for &profile in &profiles {
            let mut swim = match c {
                "before" => before(),
                "after" => SwimConfig::default(),
                _ => panic!("BENCH_CFG: {c}"),
            };
            apply_overrides(&mut swim, &set);
            setups.push(Setup {
                profile,
                swim,
                label: format!("[{c} {}]", profile.name()),
            });
        }
    }
    let only = env("BENCH_ONLY", "");
    for n in ns {
        // (changes, change window, crashes, crash window, bandwidth window, warm-up)
        let (changes, cw, crashes, kw, window, warmup) = match n {
            0..=100 => (200, 5 * S, 100, 40 * S, 120 * S, 120 * S),
            101..=1000 => (100, 3 * S, 40, 30 * S, 60 * S, 60 * S),
            _ => (50, 3 * S, 10, 25 * S, 20 * S, 20 * S),
        };
        // Shorter runs on a busy machine: BENCH_CHANGES, BENCH_CRASHES.
        let count = |k: &str, d: usize| env(k, "").parse().unwrap_or(d);
        let (changes, crashes) = (
            count("BENCH_CHANGES", changes),
            count("BENCH_CRASHES", crashes),
        );
        // BENCH_WINDOW: seconds of warm-up, of idle and of churn for the bandwidth run.
        let (window, warmup) = match count("BENCH_WINDOW", 0) {
            0 => (window, warmup),
            w => (w as Micros * S, w as Micros * S),
        };
        for s in &setups {
            if only.is_empty() || only == "dissemination" {
                dissemination(s, n, changes, cw);
            }
            if only.is_empty() || only == "crash" {
                crash_detection(s, n, crashes, kw);
            }
            if only.is_empty() || only == "false" {
                false_suspicions(s, n, 60 * S);
            }
            if only.is_empty() || only == "bandwidth" {
                bandwidth(s, n, window, warmup);
            }
        }
    }
}
