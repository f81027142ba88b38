//! The cluster end to end: real `sidecar` processes gossiping on 127.0.0.1-5 (and, for
//! the partition, inside network namespaces this test creates and removes), services
//! from static discovery, observed through `/api/state.json` and `/api/members.json`.

use serde_json::Value;
use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const KEY1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn static_json(services: &[(&str, u16)]) -> String {
    let items: Vec<String> = services
        .iter()
        .map(|(name, port)| {
            format!(
                r#"{{"Service":{{"Name":"{name}","Image":"example/{name}:1","Ports":[{{"Type":"tcp","Port":{port},"ServicePort":10100}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}"#
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// How a node is started.
struct Spec<'a> {
    cluster: &'a str,
    keys: Option<&'a str>,
    gossip_port: u16,
    seeds: Vec<String>,
}

/// One agent on 127.0.0.`i`.
struct Node {
    proc: KillOnDrop,
    name: String,
    http: String,
    dir: tempfile::TempDir,
}

impl Node {
    fn start(i: u8, spec: &Spec, services: &[(&str, u16)]) -> Node {
        let ip = format!("127.0.0.{i}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("static.json"), static_json(services)).expect("static");
        let http = format!("{ip}:{}", free_port(&ip));
        let name = format!("n{i}");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let mut cmd = Command::new(sidecar_bin());
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", dir.path().join("static.json"))
            .env("SIDECAR_CLUSTER_NAME", spec.cluster)
            .env("SIDECAR_BIND_PORT", spec.gossip_port.to_string())
            .env("HAPROXY_DISABLE", "true")
            .env("ENVOY_USE_GRPC_API", "false")
            .env("RUST_LOG", "info")
            // These tests start nodes in any order and keep refused nodes running to
            // watch them; the exit on a failed start-up join has its own test.
            .env("SIDECAR_JOIN_RETRY", "true")
            .args(["agent", "--node-name", &name, "--bind-ip", &ip])
            .args(["--advertise-ip", &ip, "--http-addr", &http])
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(k) = spec.keys {
            cmd.env("SIDECAR_ENCRYPTION_KEYS", k);
        }
        for s in &spec.seeds {
            cmd.args(["--cluster-ip", s]);
        }
        let node = Node {
            proc: KillOnDrop::spawn(&mut cmd),
            name,
            http,
            dir,
        };
        wait_for(&format!("{}'s HTTP API", node.name), WAIT, || {
            get_json(&format!("http://{}/api/state.json", node.http))
        });
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn set_services(&self, services: &[(&str, u16)]) {
        write_atomically(&self.dir.path().join("static.json"), &static_json(services));
    }

    fn state(&self) -> Option<Value> {
        get_json(&format!("http://{}/api/state.json", self.http))
    }

    fn members(&self) -> Option<Value> {
        get_json(&format!("http://{}/api/members.json", self.http))
    }

    /// `/health`'s `joined`.
    fn joined(&self) -> Option<bool> {
        get_json(&format!("http://{}/health", self.http))?["joined"].as_bool()
    }
}

impl Drop for Node {
    /// A failing test shows what each agent logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {} log (last 40 lines) ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn get_json(url: &str) -> Option<Value> {
    let r = ureq::get(url).timeout(Duration::from_secs(5)).call().ok()?;
    r.into_json().ok()
}

/// (hostname, service name) -> status, from a `/api/state.json` document.
fn services(state: &Value) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    if let Some(servers) = state["Servers"].as_object() {
        for (host, server) in servers {
            if let Some(svcs) = server["Services"].as_object() {
                for svc in svcs.values() {
                    out.push((
                        host.clone(),
                        svc["Name"].as_str().unwrap_or_default().to_string(),
                        svc["Status"].as_u64().unwrap_or(99),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

fn status_of(state: &Value, host: &str, name: &str) -> Option<u64> {
    services(state)
        .into_iter()
        .find(|(h, n, _)| h == host && n == name)
        .map(|(_, _, s)| s)
}

/// member name -> state, from `/api/members.json`.
fn member_states(doc: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["Members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["Name"].as_str().unwrap_or_default().to_string(),
                        m["State"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn state_of(doc: &Value, name: &str) -> Option<String> {
    member_states(doc)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

const ALIVE: u64 = 0;
const TOMBSTONE: u64 = 1;

#[test]
fn five_nodes_share_services_and_bury_a_killed_one() {
    let port = free_port("127.0.0.1");
    let spec = Spec {
        cluster: "e2e-five",
        keys: None,
        gossip_port: port,
        seeds: vec![format!("127.0.0.1:{port}")],
    };
    let mut nodes: Vec<Node> = (1..=5u8)
        .map(|i| Node::start(i, &spec, &[(&format!("svc{i}"), 8000 + u16::from(i))]))
        .collect();
    for n in &nodes {
        wait_for(
            &format!("all five services alive on {}", n.name),
            WAIT,
            || {
                let s = n.state()?;
                (1..=5)
                    .all(|i| status_of(&s, &format!("n{i}"), &format!("svc{i}")) == Some(ALIVE))
                    .then_some(())
            },
        );
        let everyone: Vec<(String, String)> = (1..=5)
            .map(|i| (format!("n{i}"), "alive".to_string()))
            .collect();
        wait_for(&format!("five alive members on {}", n.name), WAIT, || {
            (member_states(&n.members()?) == everyone).then_some(())
        });
    }

    // A service added on one node appears on all.
    nodes[2].set_services(&[("svc3", 8003), ("extra", 9003)]);
    for n in &nodes {
        wait_for(&format!("n3's new service on {}", n.name), WAIT, || {
            (status_of(&n.state()?, "n3", "extra") == Some(ALIVE)).then_some(())
        });
    }

    // kill -9: every other node declares n5 dead and tombstones its service.
    let _ = nodes[4].proc.0.kill();
    let _ = nodes[4].proc.0.wait();
    for n in &nodes[..4] {
        wait_for(&format!("n5 dead and buried on {}", n.name), WAIT, || {
            let dead = state_of(&n.members()?, "n5")? == "dead";
            let buried = status_of(&n.state()?, "n5", "svc5") == Some(TOMBSTONE);
            (dead && buried).then_some(())
        });
    }

    // SIGTERM: a graceful leave is announced, and its services go with it.
    let pid = nodes[3].proc.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    for n in &nodes[..3] {
        wait_for(&format!("n4 left, on {}", n.name), WAIT, || {
            let left = state_of(&n.members()?, "n4")? == "left";
            let buried = status_of(&n.state()?, "n4", "svc4") == Some(TOMBSTONE);
            (left && buried).then_some(())
        });
    }
    wait_for("n4 to exit after leaving", WAIT, || {
        (!nodes[3].proc.is_running()).then_some(())
    });
    nodes.truncate(3);
}

/// Starts a 3-node cluster and one intruder seeded with it; waits until the cluster has
/// refused the intruder's traffic for `reason`, then checks it never became a member.
fn refused(cluster: Spec, intruder: Spec, reason: &str) {
    let nodes: Vec<Node> = (1..=3u8)
        .map(|i| Node::start(i, &cluster, &[(&format!("svc{i}"), 8000 + u16::from(i))]))
        .collect();
    for n in &nodes {
        wait_for(
            &format!("the cluster's services on {}", n.name),
            WAIT,
            || {
                let s = n.state()?;
                (1..=3)
                    .all(|i| status_of(&s, &format!("n{i}"), &format!("svc{i}")) == Some(ALIVE))
                    .then_some(())
            },
        );
    }
    let bad = Node::start(4, &intruder, &[("intruder", 8004)]);
    wait_for(&format!("n1 to log refused input ({reason})"), WAIT, || {
        nodes[0]
            .log()
            .lines()
            .any(|l| l.contains("dropped gossip input") && l.contains(reason))
            .then_some(())
    });
    for n in &nodes {
        let m = n.members().expect("members");
        assert_eq!(state_of(&m, "n4"), None, "{} lists the intruder", n.name);
        let s = n.state().expect("state");
        assert!(
            services(&s).iter().all(|(h, _, _)| h != "n4"),
            "{} holds the intruder's records",
            n.name
        );
    }
    let m = bad.members().expect("members");
    assert_eq!(
        member_states(&m),
        vec![("n4".to_string(), "alive".to_string())]
    );
    assert!(
        services(&bad.state().expect("state"))
            .iter()
            .all(|(h, _, _)| h == "n4")
    );
}

#[test]
fn a_node_of_another_cluster_is_refused() {
    let port = free_port("127.0.0.1");
    let seeds = vec![format!("127.0.0.1:{port}")];
    refused(
        Spec {
            cluster: "e2e-alpha",
            keys: None,
            gossip_port: port,
            seeds: seeds.clone(),
        },
        Spec {
            cluster: "e2e-beta",
            keys: None,
            gossip_port: port,
            seeds,
        },
        "foreign_cluster",
    );
}

#[test]
fn an_encrypted_cluster_refuses_a_wrong_key_and_plaintext() {
    let port = free_port("127.0.0.1");
    let seeds = vec![format!("127.0.0.1:{port}")];
    // The cluster accepts KEY2 too (mid-rotation) but seals with KEY1.
    let ring = format!("{KEY1},{KEY2}");
    let cluster = || Spec {
        cluster: "e2e-secret",
        keys: Some(&ring),
        gossip_port: port,
        seeds: seeds.clone(),
    };
    refused(
        cluster(),
        Spec {
            cluster: "e2e-secret",
            keys: Some("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="),
            gossip_port: port,
            seeds: seeds.clone(),
        },
        "unauthenticated",
    );
    refused(
        cluster(),
        Spec {
            cluster: "e2e-secret",
            keys: None,
            gossip_port: port,
            seeds: seeds.clone(),
        },
        "unencrypted",
    );
}

#[test]
fn key_rotation_keeps_the_cluster_together() {
    let port = free_port("127.0.0.1");
    let seeds = vec![format!("127.0.0.1:{port}")];
    let spec = |keys| Spec {
        cluster: "e2e-rotate",
        keys: Some(keys),
        gossip_port: port,
        seeds: seeds.clone(),
    };
    let old_and_new = format!("{KEY1},{KEY2}");
    let new_and_old = format!("{KEY2},{KEY1}");
    // n1 seals with the old key, n2 already with the new one; both accept both.
    let a = Node::start(1, &spec(&old_and_new), &[("a", 8001)]);
    let b = Node::start(2, &spec(&new_and_old), &[("b", 8002)]);
    for n in [&a, &b] {
        wait_for(&format!("both services on {}", n.name), WAIT, || {
            let s = n.state()?;
            (status_of(&s, "n1", "a") == Some(ALIVE) && status_of(&s, "n2", "b") == Some(ALIVE))
                .then_some(())
        });
    }
}

#[test]
fn a_node_that_cannot_join_says_why_and_health_shows_it() {
    let port = free_port("127.0.0.1");
    let seed = format!("127.0.0.1:{port}");
    let spec = |keys| Spec {
        cluster: "e2e-join",
        keys: Some(keys),
        gossip_port: port,
        seeds: vec![seed.clone()],
    };
    let a = Node::start(1, &spec(KEY1), &[("a", 8001)]);
    let b = Node::start(2, &spec(KEY1), &[("b", 8002)]);
    let wrong = Node::start(3, &spec(KEY2), &[("c", 8003)]);
    for n in [&a, &b] {
        wait_for(&format!("{} joined", n.name), WAIT, || {
            (n.joined()? && state_of(&n.members()?, "n2")? == "alive").then_some(())
        });
    }
    wait_for("n3 to warn that the seed refuses its key", WAIT, || {
        wrong
            .log()
            .lines()
            .any(|l| {
                l.contains("cannot join the cluster through this seed")
                    && l.contains(&seed)
                    && l.contains("does not accept our key")
            })
            .then_some(())
    });
    assert_eq!(wrong.joined(), Some(false));
    assert_eq!(
        member_states(&wrong.members().expect("members")),
        vec![("n3".to_string(), "alive".to_string())]
    );
    assert_eq!(a.joined(), Some(true));
}

#[test]
fn seeds_without_a_key_on_a_public_address_refuse_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(sidecar_bin())
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", dir.path().join("static.json"))
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .env("SIDECAR_SEEDS", "127.0.0.1:1")
        .args([
            "agent",
            "--bind-ip",
            "0.0.0.0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run sidecar");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refusing to gossip unauthenticated")
            && err.contains("sidecar keygen")
            && err.contains("SIDECAR_GOSSIP_INSECURE"),
        "{err}"
    );
}

// ----- partition: network namespaces ---------------------------------------------------

/// Namespaces created by this test; removed (with their links and processes' network)
/// when dropped.
struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {}", args.join(" "));
}

/// `curl` inside a namespace: the agents' APIs listen on each namespace's loopback.
fn ns_get(ns: &str, path: &str) -> Option<Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sf", "-m", "5"])
        .arg(format!("http://127.0.0.1:7777{path}"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn a_partition_heals_into_one_cluster_with_the_full_catalog() {
    let can_netns = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(can_netns, "this test needs `ip netns` (run as root)");
    let tag = format!("sc{}", std::process::id() % 100_000);
    let sw = format!("{tag}sw");
    let mut netns = Netns { names: Vec::new() };
    ip(&["netns", "add", &sw]);
    netns.names.push(sw.clone());
    for br in ["bra", "brb"] {
        ip(&["-n", &sw, "link", "add", br, "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", br, "up"]);
    }
    let ns: Vec<String> = (1..=4).map(|i| format!("{tag}n{i}")).collect();
    for (i, n) in ns.iter().enumerate() {
        let i = i + 1;
        ip(&["netns", "add", n]);
        netns.names.push(n.clone());
        ip(&["-n", n, "link", "set", "lo", "up"]);
        let sw_end = format!("s{i}");
        ip(&[
            "-n", &sw, "link", "add", &sw_end, "type", "veth", "peer", "name", "eth0", "netns", n,
        ]);
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("10.199.0.{i}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", n, "link", "set", "eth0", "up"]);
        ip(&["-n", &sw, "link", "set", &sw_end, "master", "bra"]);
        ip(&["-n", &sw, "link", "set", &sw_end, "up"]);
    }
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut procs = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        let i = i + 1;
        let dir = dirs[i - 1].path();
        std::fs::write(
            dir.join("static.json"),
            static_json(&[(&format!("svc{i}"), 8000)]),
        )
        .expect("static");
        let log = std::fs::File::create(dir.join("agent.log")).expect("log");
        let addr = format!("10.199.0.{i}");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", n])
            .arg(sidecar_bin())
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", dir.join("static.json"))
            .env("HAPROXY_DISABLE", "true")
            .env("ENVOY_USE_GRPC_API", "false")
            .env("RUST_LOG", "info")
            .env("SIDECAR_ENCRYPTION_KEYS", KEY1)
            .env("SIDECAR_JOIN_RETRY", "true")
            .args(["agent", "--node-name", &format!("n{i}"), "--bind-ip", &addr])
            .args(["--advertise-ip", &addr, "--http-addr", "127.0.0.1:7777"])
            .args(["--cluster-ip", "10.199.0.1"])
            .stdout(Stdio::null())
            .stderr(log);
        procs.push(KillOnDrop::spawn(&mut cmd));
    }
    let everyone_alive = |n: &str, count: usize| -> Option<()> {
        let m = ns_get(n, "/api/members.json")?;
        let states = member_states(&m);
        (states.len() == count && states.iter().all(|(_, s)| s == "alive")).then_some(())
    };
    let all_services = |n: &str, count: usize| -> Option<()> {
        let s = ns_get(n, "/api/state.json")?;
        let alive: Vec<_> = services(&s).into_iter().filter(|x| x.2 == ALIVE).collect();
        (alive.len() == count).then_some(())
    };
    for n in &ns {
        wait_for(&format!("one cluster seen from {n}"), WAIT, || {
            everyone_alive(n, 4)?;
            all_services(n, 4)
        });
    }

    // Partition {n1, n2} | {n3, n4}; each side declares the other dead.
    for s in ["s3", "s4"] {
        ip(&["-n", &sw, "link", "set", s, "master", "brb"]);
    }
    let sees_dead = |n: &str, others: [&str; 2]| -> Option<()> {
        let m = ns_get(n, "/api/members.json")?;
        others
            .iter()
            .all(|o| state_of(&m, o).as_deref() == Some("dead"))
            .then_some(())
    };
    wait_for("n1 to declare n3 and n4 dead", WAIT, || {
        sees_dead(&ns[0], ["n3", "n4"])
    });
    wait_for("n3 to declare n1 and n2 dead", WAIT, || {
        sees_dead(&ns[2], ["n1", "n2"])
    });
    // A change on the minority side during the partition.
    write_atomically(
        &dirs[3].path().join("static.json"),
        &static_json(&[("svc4", 8000), ("late", 8001)]),
    );
    wait_for("n3 to see n4's new service", WAIT, || {
        (status_of(&ns_get(&ns[2], "/api/state.json")?, "n4", "late") == Some(ALIVE)).then_some(())
    });

    // Heal: one cluster again, every node with the full catalog.
    for s in ["s3", "s4"] {
        ip(&["-n", &sw, "link", "set", s, "master", "bra"]);
    }
    for n in &ns {
        wait_for(&format!("the healed cluster seen from {n}"), WAIT, || {
            everyone_alive(n, 4)?;
            all_services(n, 5)
        });
    }
    drop(procs);
}
