//! The rolling migration, as an operator would run it: three Go Sidecar nodes with
//! services and haproxy-api following one of them; each Go node is replaced by ours on
//! the memberlist wire, one at a time; then each of ours is restarted on the native
//! wire, one at a time. A poller reads every running node's `/api/services.json` and
//! haproxy-api's generated config all along: no instance may disappear, except those
//! of the host being restarted. Skipped (with the reason) without the Go binaries or
//! without root.

use sidecar_e2e::mixed::*;
use sidecar_e2e::{KillOnDrop, wait_for};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);

/// Hosts whose instances are ALIVE in a node's `/api/services.json`.
fn alive_hosts(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(svcs) = doc["Services"].as_object() {
        for (name, list) in svcs {
            for s in list.as_array().into_iter().flatten() {
                if s["Status"].as_u64() == Some(ALIVE) {
                    let host = s["Hostname"].as_str().unwrap_or_default().to_string();
                    out.insert((host, name.clone()));
                }
            }
        }
    }
    out
}

fn ns_get(ns: &str, path: &str) -> Option<serde_json::Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sf", "-m", "3"])
        .arg(format!("http://127.0.0.1:7777{path}"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// What the poller checks against, updated by the test as it rolls.
struct Watch {
    /// (namespace, host name) of every node the poller reads.
    nodes: Vec<(String, String)>,
    /// The host being restarted: its instances may come and go.
    restarting: Option<String>,
    violations: Vec<String>,
    polls: u64,
}

#[test]
fn a_go_cluster_rolls_onto_ours_then_onto_the_native_wire_without_losing_an_instance() {
    if let Some(why) = skip_reason() {
        eprintln!("{why}");
        return;
    }
    let mut lab = Lab::new();
    let hosts: Vec<Host> = (1..=3).map(|i| lab.host(&format!("h{i}"))).collect();
    let seeds: Vec<String> = hosts.iter().map(|h| h.ip.clone()).collect();
    let seeds: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let names = ["alpha", "bravo", "charlie"];
    let mut nodes: Vec<Node> = hosts
        .iter()
        .zip(names)
        .enumerate()
        .map(|(i, (h, name))| {
            let port = 8001 + i as u16;
            let n = Node::start(
                &lab,
                h,
                Kind::Go,
                &seeds,
                &[svc(name, port, 10001 + i as u16)],
            );
            // Go exits when no seed answers: the first must be up before the others.
            n.wait_up();
            n
        })
        .collect();
    let expected: BTreeSet<(String, String)> = hosts
        .iter()
        .zip(names)
        .map(|(h, n)| (h.name.clone(), n.to_string()))
        .collect();
    let converged = |nodes: &[Node]| {
        for n in nodes {
            wait_for(
                &format!("{} ({:?}) to see every instance alive", n.host.name, n.kind),
                WAIT,
                || (alive_hosts(&n.get("/api/services.json")?) == expected).then_some(()),
            );
        }
    };
    converged(&nodes);

    // haproxy-api follows the node on h1 and writes its HAProxy config.
    let tools = go_tools().expect("go tools");
    let hdir = lab.dir.path().join("haproxy-api");
    std::fs::create_dir_all(&hdir).expect("dir");
    let cfg_out = hdir.join("haproxy.cfg");
    std::fs::write(
        hdir.join("haproxy-api.toml"),
        format!(
            "[haproxy]\nreload_cmd = \"true\"\nverify_cmd = \"true\"\ntemplate = \"{}\"\nconfig_file = \"{}\"\npid_file = \"{}\"\nbind_ip = \"192.168.168.168\"\nuser = \"\"\ngroup = \"\"\n\n[haproxy_api]\nbind_ip = \"127.0.0.1\"\nbind_port = 7778\nlogging_level = \"info\"\n",
            tools.join("haproxy-api-templates/haproxy.cfg").display(),
            cfg_out.display(),
            hdir.join("haproxy.pid").display(),
        ),
    )
    .expect("haproxy-api.toml");
    let hlog = std::fs::File::create(hdir.join("haproxy-api.log")).expect("log");
    let _haproxy_api = KillOnDrop::spawn(
        Command::new("ip")
            .args(["netns", "exec", &hosts[0].ns])
            .arg(tools.join("haproxy-api-3b42681"))
            .args(["-f", &hdir.join("haproxy-api.toml").display().to_string()])
            .args(["--follow", "127.0.0.1:7777"])
            .current_dir(&hdir)
            .stdout(hlog.try_clone().expect("log"))
            .stderr(hlog),
    );
    // `server <host>-<id> <ip>:<port> cookie ...`: the hosts with a server line.
    let proxied = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("server "))
            .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
            .map(|(host, _)| host.to_string())
            .collect()
    };
    let all_hosts: BTreeSet<String> = hosts.iter().map(|h| h.name.clone()).collect();
    wait_for("haproxy-api to write every host's server", WAIT, || {
        let text = std::fs::read_to_string(&cfg_out).ok()?;
        (proxied(&text) == all_hosts).then_some(())
    });

    // The poller.
    let watch = Arc::new(Mutex::new(Watch {
        nodes: hosts
            .iter()
            .map(|h| (h.ns.clone(), h.name.clone()))
            .collect(),
        restarting: None,
        violations: Vec::new(),
        polls: 0,
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (watch, stop, cfg_out, expected, all_hosts) = (
            watch.clone(),
            stop.clone(),
            cfg_out.clone(),
            expected.clone(),
            all_hosts.clone(),
        );
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let (nodes, restarting) = {
                    let w = watch.lock().expect("lock");
                    (w.nodes.clone(), w.restarting.clone())
                };
                let mut found = Vec::new();
                for (ns, name) in &nodes {
                    if Some(name) == restarting.as_ref() {
                        continue;
                    }
                    // A node that does not answer (it is starting) shows nothing.
                    let Some(doc) = ns_get(ns, "/api/services.json") else {
                        continue;
                    };
                    let seen = alive_hosts(&doc);
                    for want in &expected {
                        if Some(&want.0) != restarting.as_ref() && !seen.contains(want) {
                            found.push(format!(
                                "{:.1}s: {name} lost {}'s {} (restarting: {restarting:?})",
                                started.elapsed().as_secs_f64(),
                                want.0,
                                want.1
                            ));
                        }
                    }
                }
                if let Ok(text) = std::fs::read_to_string(&cfg_out) {
                    let got = proxied(&text);
                    for h in &all_hosts {
                        if Some(h) != restarting.as_ref() && !got.contains(h) && !text.is_empty() {
                            found.push(format!(
                                "{:.1}s: haproxy-api's config lost {h} (restarting: {restarting:?})",
                                started.elapsed().as_secs_f64()
                            ));
                        }
                    }
                }
                let mut w = watch.lock().expect("lock");
                w.polls += 1;
                // Only judge a poll taken entirely under the same restarting host.
                if w.restarting == restarting {
                    w.violations.extend(found);
                }
                drop(w);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let roll = |nodes: &mut Vec<Node>, kind: Kind| {
        for i in 0..nodes.len() {
            let host = nodes[i].host.name.clone();
            watch.lock().expect("lock").restarting = Some(host.clone());
            nodes[i].restart_as(kind, &seeds);
            converged(nodes);
            // haproxy-api follows h1: wait until it shows every host again.
            wait_for("haproxy-api to show every host again", WAIT, || {
                let text = std::fs::read_to_string(&cfg_out).ok()?;
                (proxied(&text) == all_hosts).then_some(())
            });
            // Let every node's view settle past the restart before judging again.
            std::thread::sleep(Duration::from_secs(3));
            watch.lock().expect("lock").restarting = None;
            std::thread::sleep(Duration::from_secs(3));
        }
    };
    roll(&mut nodes, Kind::RustMemberlist);
    roll(&mut nodes, Kind::RustNative);
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let _ = poller.join();
    // The end state: one cluster of ours on the native wire.
    for n in &nodes {
        assert_eq!(n.kind, Kind::RustNative);
        wait_for(
            &format!("{} to see every member alive", n.host.name),
            WAIT,
            || {
                let doc = n.get("/api/members.json")?;
                let alive = doc["Members"]
                    .as_array()?
                    .iter()
                    .filter(|m| m["State"] == "alive")
                    .count();
                (alive == 3).then_some(())
            },
        );
    }
    let w = watch.lock().expect("lock");
    eprintln!(
        "the poller read every node and haproxy-api's config {} times",
        w.polls
    );
    assert!(w.polls > 20, "the poller ran {} times", w.polls);
    assert!(
        w.violations.is_empty(),
        "instances disappeared during the roll:\n{}",
        w.violations.join("\n")
    );
    drop(w);
    drop(nodes);
}
