//! Scenarios: the randomized fault campaign run by CI, and services for workloads.

use super::{Sim, SimConfig, check, node_name};
use crate::swim::Micros;
use crate::swim::rng::Rng;
use sidecar_catalog::{Port, PortKind, Service, Status, Timestamp};
use std::time::Duration;

const S: Micros = 1_000_000;

/// A service as discovery would report it on node `node`.
pub fn service(node: u32, i: usize, status: Status) -> Service {
    Service {
        id: format!("{node:04x}{i:08x}"),
        name: format!("svc-{}", i % 7),
        image: format!("registry.example.com/svc-{}:1.{i}", i % 7),
        created: Timestamp::from_unix_secs(1_767_225_600),
        hostname: node_name(node),
        ports: vec![Port {
            kind: PortKind::Tcp,
            port: 30_000 + i as u16,
            service_port: 10_000 + (i % 7) as u16,
            ip: format!("10.0.{}.{}", node / 250, node % 250 + 1),
        }],
        updated: Timestamp::UNIX_EPOCH,
        proxy_mode: "http".into(),
        status,
    }
}

/// Outcome of one seed of the campaign.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub n: usize,
    pub violations: Vec<String>,
    pub converged: Result<(), String>,
    pub events: u64,
    pub log: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.converged.is_ok()
    }
}

/// One adversarial run: 60 s of random faults (loss up to 30 %, one-way loss,
/// partitions, crashes, restarts with stepped-back clocks, graceful leaves, service
/// churn, clock skew up to ±1 h and jumps of ±10 min), then the network heals, every
/// seed node is brought back, and after `settle` the cluster must have converged.
pub fn chaos(seed: u64, settle: Duration) -> Outcome {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let n = 5 + rng.below(10);
    let mut cfg = SimConfig::new(n, seed);
    cfg.check = true;
    cfg.network.latency_min = 100 + rng.below(500) as u64;
    cfg.network.latency_max = cfg.network.latency_min + rng.below(20_000) as u64;
    let mut sim = Sim::new(cfg);
    let mut log = Vec::new();
    let mut services: Vec<Vec<Service>> = vec![Vec::new(); n];
    for id in 0..n as u32 {
        let skew = Duration::from_millis(rng.below(3_600_000) as u64);
        sim.set_skew(id, skew, rng.chance(0.5));
        let k = rng.below(4);
        services[id as usize] = (0..k).map(|i| service(id, i, Status::Alive)).collect();
        sim.set_local(id, services[id as usize].clone());
    }
    sim.run_until(5 * S);
    let chaos_end = 65 * S;
    let mut t = 5 * S;
    while t < chaos_end {
        t += (200_000 + rng.below(4_000_000)) as u64;
        sim.run_until(t);
        let target = rng.below(n) as u32;
        match rng.below(12) {
            0 => {
                sim.net.loss = rng.unit() * 0.3;
                log.push(format!("{t}: loss {:.2}", sim.net.loss));
            }
            1 => {
                sim.net.groups = (0..n).map(|_| rng.below(2) as u8).collect();
                log.push(format!("{t}: partition {:?}", sim.net.groups));
            }
            2 => {
                sim.net.groups.clear();
                log.push(format!("{t}: partition healed"));
            }
            3 => {
                let other = rng.below(n) as u32;
                sim.net
                    .one_way
                    .insert((target, other), 0.5 + rng.unit() * 0.5);
                log.push(format!("{t}: one-way loss n{target}->n{other}"));
            }
            4 if sim.nodes[target as usize].is_up() => {
                sim.crash(target);
                log.push(format!("{t}: crash n{target}"));
            }
            5 if !sim.nodes[target as usize].is_up() || sim.nodes[target as usize].left => {
                if rng.chance(0.5) {
                    sim.set_skew(target, Duration::from_secs(600), false);
                }
                sim.restart(target);
                log.push(format!("{t}: restart n{target}"));
            }
            6 if sim.nodes[target as usize].is_up() && !sim.nodes[target as usize].left => {
                sim.leave(target);
                log.push(format!("{t}: n{target} leaves"));
            }
            7 | 8 => {
                let list = &mut services[target as usize];
                let i = rng.below(6);
                match list
                    .iter()
                    .position(|s| s.id == service(target, i, Status::Alive).id)
                {
                    Some(p) if rng.chance(0.5) => {
                        list.remove(p);
                    }
                    Some(p) => {
                        list[p].status = if list[p].status == Status::Alive {
                            Status::Unhealthy
                        } else {
                            Status::Alive
                        };
                    }
                    None => list.push(service(target, i, Status::Alive)),
                }
                let l = list.clone();
                sim.set_local(target, l);
                log.push(format!("{t}: n{target} services changed"));
            }
            9 => {
                let jump = Duration::from_secs(rng.below(600) as u64);
                let ahead = rng.chance(0.5);
                sim.set_skew(target, jump, ahead);
                log.push(format!("{t}: n{target} clock jumps to {ahead} {jump:?}"));
            }
            _ => {}
        }
    }
    sim.net.heal();
    for id in 0..3u32.min(n as u32) {
        if !sim.nodes[id as usize].is_up() || sim.nodes[id as usize].left {
            sim.restart(id);
            log.push(format!("{chaos_end}: restart seed n{id}"));
        }
    }
    log.push(format!("{chaos_end}: network healed"));
    sim.run_until(chaos_end + settle.as_micros() as Micros);
    let converged = check::converged(&sim);
    Outcome {
        seed,
        n,
        violations: sim
            .checker
            .as_ref()
            .map(|c| c.violations.clone())
            .unwrap_or_default(),
        converged,
        events: sim.events_processed,
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_cluster_converges() {
        let mut sim = Sim::new(SimConfig::new(8, 1));
        for id in 0..8 {
            sim.set_local(id, vec![service(id, 0, Status::Alive)]);
        }
        sim.run_until(30 * S);
        assert_eq!(check::converged(&sim), Ok(()));
    }

    #[test]
    fn a_crashed_node_is_declared_dead_and_its_services_tombstoned() {
        let mut sim = Sim::new(SimConfig::new(10, 2));
        for id in 0..10 {
            sim.set_local(id, vec![service(id, 0, Status::Alive)]);
        }
        sim.run_until(20 * S);
        sim.crash(4);
        sim.run_until(60 * S);
        assert_eq!(check::converged(&sim), Ok(()));
        for n in sim.up_nodes() {
            let svc = n
                .catalog
                .state()
                .get("n4", &service(4, 0, Status::Alive).id);
            assert_eq!(
                svc.map(|s| s.status),
                Some(Status::Tombstone),
                "at n{}",
                n.id
            );
        }
    }

    /// Campaign seed 5561: a member that missed a departed life of n2 hands the restarted
    /// n2 an older generation than the others remember as departed.
    #[test]
    fn a_node_restarted_after_leaving_twice_comes_back() {
        for seed in 0..20 {
            let mut sim = Sim::new(SimConfig::new(5, seed));
            sim.run_until(10 * S);
            sim.set_skew(2, Duration::from_secs(600), false);
            sim.net.groups = vec![1, 0, 0, 0, 0];
            sim.run_until(sim.now + 2 * S);
            sim.leave(2);
            sim.run_until(sim.now + 2 * S);
            sim.restart(2);
            sim.run_until(sim.now + 5 * S);
            sim.leave(2);
            sim.run_until(sim.now + 2 * S);
            sim.net.heal();
            sim.restart(2);
            sim.run_until(sim.now + 60 * S);
            assert_eq!(check::converged(&sim), Ok(()), "seed {seed}");
        }
    }

    /// The CI campaign: `SIDECAR_SIM_SEEDS` seeds (default 200) from
    /// `SIDECAR_SIM_SEED_START` (default 0); every invariant checked after every event.
    #[test]
    fn chaos_campaign() {
        let start: u64 = std::env::var("SIDECAR_SIM_SEED_START")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let count: u64 = std::env::var("SIDECAR_SIM_SEEDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let mut failed = Vec::new();
        let mut events = 0;
        for seed in start..start + count {
            let o = chaos(seed, Duration::from_secs(90));
            events += o.events;
            if !o.ok() {
                failed.push(format!(
                    "seed {seed} (n={}): violations {:?}, convergence {:?}\n  log: {}",
                    o.n,
                    o.violations,
                    o.converged,
                    o.log.join("\n       ")
                ));
            }
        }
        eprintln!("{count} seeds, {events} events, {} failed", failed.len());
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
