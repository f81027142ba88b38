//! Go Sidecar nodes and ours (`SIDECAR_GOSSIP_WIRE=memberlist`) in one cluster, each in
//! its own network namespace: records, health changes, drains, crashes, graceful
//! leaves and late joiners cross between them in both directions, as users see them in
//! each node's `/api/state.json`. Skipped (with the reason) without the Go binaries or
//! without root.

use sidecar_e2e::mixed::*;
use sidecar_e2e::wait_for;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn sees(observer: &Node, host: &str, name: &str, status: u64) -> Option<()> {
    (observer.status_of(host, name) == Some(status)).then_some(())
}

fn wait_status(observer: &Node, host: &str, name: &str, status: u64, within: Duration) {
    wait_for(
        &format!(
            "{} ({:?}) to see {host}'s {name} with status {status}",
            observer.host.name, observer.kind
        ),
        within,
        || sees(observer, host, name, status),
    );
}

fn id_of(node: &Node, name: &str) -> String {
    node.records()
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.host == node.host.name && r.name == name && r.status != TOMBSTONE)
        .map(|r| r.id)
        .unwrap_or_else(|| panic!("{} has no record of its {name}", node.host.name))
}

#[test]
fn go_and_rust_nodes_form_one_cluster_both_ways() {
    if let Some(why) = skip_reason() {
        eprintln!("{why}");
        return;
    }
    let mut lab = Lab::new();
    let (h1, h2, h3, h4) = (
        lab.host("go1"),
        lab.host("rs1"),
        lab.host("go2"),
        lab.host("rs2"),
    );
    let seed = h1.ip.clone();
    let g1 = Node::start(&lab, &h1, Kind::Go, &[&seed], &[svc("alpha", 8001, 10001)]);
    g1.wait_up();
    let r1 = Node::start(
        &lab,
        &h2,
        Kind::RustMemberlist,
        &[&seed],
        &[svc("bravo", 8002, 10002)],
    );
    let mut g2 = Node::start(
        &lab,
        &h3,
        Kind::Go,
        &[&seed],
        &[svc("charlie", 8003, 10003)],
    );
    let mut r2 = Node::start(
        &lab,
        &h4,
        Kind::RustMemberlist,
        &[&h2.ip],
        &[svc("delta", 8004, 10004)],
    );
    let nodes = [&g1, &r1, &g2, &r2];
    let all = [
        ("go1", "alpha"),
        ("rs1", "bravo"),
        ("go2", "charlie"),
        ("rs2", "delta"),
    ];

    // A service announced on either kind appears, ALIVE, on every node.
    for n in nodes {
        for (host, name) in all {
            wait_status(n, host, name, ALIVE, WAIT);
        }
    }
    // Members: the Go node lists ours in ClusterMembers, ours lists the Go nodes.
    wait_for("go1 to list rs1 and rs2 as members", WAIT, || {
        let doc = g1.get("/api/services.json")?;
        let m = doc["ClusterMembers"].as_object()?;
        (m.contains_key("rs1") && m.contains_key("rs2")).then_some(())
    });
    wait_for("rs1 to list go1 and go2 as alive members", WAIT, || {
        let doc = r1.get("/api/members.json")?;
        let alive = |n: &str| {
            doc["Members"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|m| m["Name"] == n && m["State"] == "alive"))
        };
        (alive("go1") && alive("go2")).then_some(())
    });

    // Health changes, both ways.
    g1.set_healthy("alpha", false);
    wait_status(&r1, "go1", "alpha", UNHEALTHY, WAIT);
    wait_status(&r2, "go1", "alpha", UNHEALTHY, WAIT);
    g1.set_healthy("alpha", true);
    wait_status(&r1, "go1", "alpha", ALIVE, WAIT);
    r1.set_healthy("bravo", false);
    wait_status(&g1, "rs1", "bravo", UNHEALTHY, WAIT);
    wait_status(&g2, "rs1", "bravo", UNHEALTHY, WAIT);
    r1.set_healthy("bravo", true);
    wait_status(&g2, "rs1", "bravo", ALIVE, WAIT);

    // Drains, both ways (Go spreads a drain through push/pull: up to ~20 s).
    let id = id_of(&g2, "charlie");
    assert_eq!(g2.post(&format!("/api/services/{id}/drain")), Some(202));
    wait_status(&r1, "go2", "charlie", DRAINING, WAIT);
    let id = id_of(&r2, "delta");
    assert_eq!(r2.post(&format!("/api/services/{id}/drain")), Some(202));
    wait_status(&g1, "rs2", "delta", DRAINING, WAIT);

    // A late joiner of each kind, each joining through the other kind, gets the full
    // catalog.
    let h5 = lab.host("rs3");
    let r3 = Node::start(
        &lab,
        &h5,
        Kind::RustMemberlist,
        &[&h1.ip],
        &[svc("echo", 8005, 10005)],
    );
    let h6 = lab.host("go3");
    let g3 = Node::start(
        &lab,
        &h6,
        Kind::Go,
        &[&h2.ip],
        &[svc("foxtrot", 8006, 10006)],
    );
    for (host, name, status) in [
        ("go1", "alpha", ALIVE),
        ("rs1", "bravo", ALIVE),
        ("go2", "charlie", DRAINING),
        ("rs2", "delta", DRAINING),
        ("go3", "foxtrot", ALIVE),
    ] {
        wait_status(&r3, host, name, status, WAIT);
    }
    for (host, name) in [("go1", "alpha"), ("rs1", "bravo"), ("rs3", "echo")] {
        wait_status(&g3, host, name, ALIVE, WAIT);
    }

    // kill -9: the others tombstone the dead node's services.
    g2.kill9();
    wait_status(&r1, "go2", "charlie", TOMBSTONE, WAIT);
    wait_status(&r3, "go2", "charlie", TOMBSTONE, WAIT);
    r2.kill9();
    wait_status(&g1, "rs2", "delta", TOMBSTONE, WAIT);
    wait_status(&g3, "rs2", "delta", TOMBSTONE, WAIT);

    // Graceful leave of ours: the Go nodes tombstone its services at once (it says it
    // leaves; no failure detection needed).
    let mut r3 = r3;
    r3.stop();
    wait_status(&g1, "rs3", "echo", TOMBSTONE, Duration::from_secs(15));
    wait_status(&r1, "rs3", "echo", TOMBSTONE, Duration::from_secs(15));
    // And of a Go node.
    let mut g3 = g3;
    g3.stop();
    wait_status(&r1, "go3", "foxtrot", TOMBSTONE, WAIT);
}
