//! Start-up join as in Sidecar: with seeds given and none joinable, the daemon exits
//! non-zero naming each seed and why; `SIDECAR_JOIN_RETRY` keeps it retrying instead;
//! once joined, losing every peer never stops it.

mod daemon_common;

use daemon_common::{Agent, WAIT, agent_command, try_get};
use sidecar_e2e::{free_port, wait_for};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn start_up_exits_naming_each_seed_when_none_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("static.json"), "[]").expect("static.json");
    let (closed_a, closed_b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let seeds = format!("127.0.0.1:{closed_a},127.0.0.1:{closed_b}");
    let mut cmd = agent_command(
        dir.path(),
        "lonely",
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    cmd.env("SIDECAR_SEEDS", &seeds).stderr(Stdio::piped());
    let out = cmd.output().expect("run the daemon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a start-up join with no seed answering exits non-zero: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("failed to join the cluster"), "{last}");
    for port in [closed_a, closed_b] {
        let seed = format!("127.0.0.1:{port}: connection refused");
        assert!(last.contains(&seed), "the error names {seed}: {last}");
    }
    assert!(last.contains("SIDECAR_JOIN_RETRY"), "{last}");
}

#[test]
fn join_retry_waits_for_a_seed_that_starts_later() {
    let seed_port = free_port("127.0.0.1");
    let seed = format!("127.0.0.1:{seed_port}");
    let mut a = Agent::start(
        "early",
        "[]",
        &[
            ("SIDECAR_SEEDS", seed.as_str()),
            ("SIDECAR_JOIN_RETRY", "true"),
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(a.proc.is_running(), "retrying instead of exiting");
    assert!(
        a.log()
            .contains("cannot join the cluster through this seed; retrying")
    );
    let port = seed_port.to_string();
    let _late = Agent::start("late", "[]", &[("SIDECAR_BIND_PORT", port.as_str())]);
    // The core backs off up to 60 s between attempts; the seed's own join of `early`
    // is not possible (it has no seeds), so this is `early`'s retry succeeding.
    wait_for("early to join late", WAIT * 4, || {
        let doc = a.get("/api/services.json").json();
        doc["ClusterMembers"].get("late").map(|_| ())
    });
}

#[test]
fn losing_every_peer_after_joining_never_stops_the_daemon() {
    let b = Agent::start("peer", "[]", &[]);
    let seed = format!("127.0.0.1:{}", b.gossip_port);
    let mut a = Agent::start("survivor", "[]", &[("SIDECAR_SEEDS", seed.as_str())]);
    wait_for("survivor to join peer", WAIT, || {
        let doc = a.get("/api/services.json").json();
        doc["ClusterMembers"].get("peer").map(|_| ())
    });
    let url = a.url("/health");
    drop(b);
    // Failure detection: suspicion, then dead, then the seed is retried with backoff.
    std::thread::sleep(Duration::from_secs(10));
    assert!(a.proc.is_running(), "the daemon keeps running alone");
    let health = try_get(&url).expect("the API still answers");
    assert_eq!(health.status, 200);
    assert!(!a.log().contains("failed to join the cluster"));
}
