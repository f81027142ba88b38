//! End to end: the built `sidecar` (static discovery, health checks, the embedded
//! `proxy-haproxy` plugin with a user template) drives a real HAProxy 2.6 in
//! master-worker mode; real HTTP and TCP traffic to real backends.

mod proxy_common;

use proxy_common::*;
use sidecar_e2e::{free_port, wait_for, workspace_root};
use std::path::Path;

const BIND: &str = "127.0.0.2";

fn haproxy_env(dir: &Path) -> Vec<(&'static str, String)> {
    let mut env = proxy_common::haproxy_env(dir, BIND);
    let template = dir.join("haproxy.cfg.j2").display().to_string();
    env.push(("HAPROXY_TEMPLATE_FILE", template));
    env
}

#[test]
fn haproxy_follows_services_and_never_loads_a_bad_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let _stop = StopHaproxy(dir.path().join("haproxy.pid"));
    // A user template: the default one, plus a line HAProxy refuses while a service
    // named `poison` is alive (a template bug that only shows with some catalogs).
    let default = std::fs::read_to_string(
        workspace_root().join("plugins/proxy-haproxy/templates/haproxy.cfg.j2"),
    )
    .expect("default template");
    let template = format!(
        "{default}{{% for svc in services %}}{{% if svc.name == \"poison\" %}}\n    bogus_directive\n{{% endif %}}{{% endfor %}}"
    );
    std::fs::write(dir.path().join("haproxy.cfg.j2"), template).expect("template");

    let (a1, a2, t1) = (
        Backend::start("a1"),
        Backend::start("a2"),
        Backend::start("t1"),
    );
    let (web, db) = (free_port(BIND), free_port(BIND));
    let web_a1 = target("a1", "web", "http", a1.port, web);
    let web_a2 = target("a2", "web", "http", a2.port, web);
    let db_t1 = target("t1", "db", "tcp", t1.port, db);
    let agent = Agent::start(
        dir.path(),
        &[web_a1.clone(), db_t1.clone()],
        &haproxy_env(dir.path()),
    );

    wait_for("HTTP through HAProxy", WAIT, || {
        (http_get(BIND, web)? == (200, "a1".to_string())).then_some(())
    });
    assert_eq!(tcp_line(BIND, db).as_deref(), Some("t1"), "tcp frontend");
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config");
    assert!(
        cfg.contains(&format!(
            "server host1-a1 127.0.0.1:{} cookie host1-{}",
            a1.port, a1.port
        )),
        "{cfg}"
    );

    follow_add_unhealthy_drain(
        &agent,
        &[web_a1.clone(), web_a2.clone(), db_t1.clone()],
        &a1,
        BIND,
        web,
    );

    // A config HAProxy refuses (the template breaks on one service): `haproxy -c`
    // rejects it, the search finds the instance to blame and quarantines it; the
    // config without it (the one already live) keeps serving.
    let good = std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config");
    let poison = target("p1", "poison", "http", a1.port, free_port(BIND));
    agent.set_targets(&[web_a1.clone(), web_a2.clone(), db_t1.clone(), poison]);
    let q = wait_for("the poison quarantined in the API", WAIT, || {
        let s = agent.proxy_status();
        let q = s["haproxy"]["quarantined"].as_array()?.first()?.clone();
        (q["id"] == "p1").then_some(q)
    });
    assert_eq!(q["kind"], "rejected", "{q}");
    assert_eq!(q["service"], "poison", "{q}");
    assert!(
        q["reason"]
            .as_str()
            .unwrap_or("")
            .contains("bogus_directive"),
        "{q}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config"),
        good
    );
    assert!(agent.proxy_status()["haproxy"]["state"]["last_error"].is_null());
    assert_eq!(seen(BIND, web, 10), ["a1"]);
    assert_eq!(tcp_line(BIND, db).as_deref(), Some("t1"));

    // Removed (and the poison gone): the next config goes through, the quarantine
    // forgets the poison.
    agent.set_targets(std::slice::from_ref(&web_a1));
    wait_for("db frontend removed", WAIT, || {
        tcp_line(BIND, db).is_none().then_some(())
    });
    wait_for("quarantine emptied", WAIT, || {
        agent.proxy_status()["haproxy"]["quarantined"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    assert_eq!(seen(BIND, web, 5), ["a1"]);
    let s = agent.proxy_status();
    assert!(
        s["haproxy"]["counters"]["verify_failures"].as_u64() >= Some(1),
        "{s}"
    );
    assert!(
        s["haproxy"]["counters"]["bisections"].as_u64() >= Some(1),
        "{s}"
    );
}

/// The attacker's records: an IP that is a name which does not resolve, and two IDs
/// that sanitise to the same server name. Neither may freeze HAProxy: a service
/// announced after them is routed, the bad one is reported with its reason.
#[test]
fn bad_records_are_quarantined_and_later_services_still_flow() {
    let dir = tempfile::tempdir().expect("tmp");
    let _stop = StopHaproxy(dir.path().join("haproxy.pid"));
    let env: Vec<_> = haproxy_env(dir.path())
        .into_iter()
        .filter(|(k, _)| *k != "HAPROXY_TEMPLATE_FILE")
        .collect();
    let (a1, b1, b2, late) = (
        Backend::start("a1"),
        Backend::start("b1"),
        Backend::start("b2"),
        Backend::start("late"),
    );
    let (web, pair, late_port) = (free_port(BIND), free_port(BIND), free_port(BIND));
    let web_a1 = target("a1", "web", "http", a1.port, web);
    let agent = Agent::start(dir.path(), std::slice::from_ref(&web_a1), &env);
    wait_for("HTTP through HAProxy", WAIT, || {
        (http_get(BIND, web)? == (200, "a1".to_string())).then_some(())
    });

    // Alive (its check passes) but its IP is a name that does not resolve.
    let mut bad = target("bad", "evil", "http", a1.port, free_port(BIND));
    bad["Service"]["Ports"][0]["IP"] = "nonexistent.invalid".into();
    let pair_1 = target("a b", "pair", "http", b1.port, pair);
    let pair_2 = target("a-b", "pair", "http", b2.port, pair);
    agent.set_targets(&[web_a1.clone(), bad.clone(), pair_1.clone(), pair_2.clone()]);
    let q = wait_for("the bad record quarantined", WAIT, || {
        let s = agent.proxy_status();
        let q = s["haproxy"]["quarantined"].as_array()?.first()?.clone();
        (q["id"] == "bad").then_some(q)
    });
    assert_eq!(q["kind"], "invalid", "{q}");
    assert_eq!(q["host"], "host1", "{q}");
    assert!(
        q["reason"]
            .as_str()
            .unwrap_or("")
            .contains("\"nonexistent.invalid\" of port"),
        "{q}"
    );
    assert!(q["since"].as_str().is_some_and(|s| !s.is_empty()), "{q}");
    // Both IDs of the colliding pair are distinct servers.
    wait_for("both pair instances routed", WAIT, || {
        (seen(BIND, pair, 10) == ["b1", "b2"]).then_some(())
    });

    // Announced after the bad record: routed.
    let late_svc = target("late1", "late", "http", late.port, late_port);
    agent.set_targets(&[web_a1, bad, pair_1, pair_2, late_svc]);
    wait_for("the later service routed", WAIT, || {
        (http_get(BIND, late_port)? == (200, "late".to_string())).then_some(())
    });
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config");
    assert!(!cfg.contains("nonexistent.invalid"), "{cfg}");
    assert!(cfg.contains("server host1-a-b 127.0.0.1:"), "{cfg}");
    assert!(cfg.contains("mode 660 level admin"), "{cfg}");
    let s = agent.proxy_status();
    assert!(s["haproxy"]["state"]["last_error"].is_null(), "{s}");
    assert_eq!(
        s["haproxy"]["quarantined"].as_array().map(Vec::len),
        Some(1),
        "{s}"
    );
    let metrics = ureq::get(&format!("{}/metrics", agent.api))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("sidecar_haproxy_quarantined_instances 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidecar_haproxy_quarantines_total{reason=\"invalid\"} 1"),
        "{metrics}"
    );
}

/// `HAPROXY_USE_HOSTNAMES`: servers by name with `init-addr last,libc,none`, so the real
/// HAProxy loads a config whose server name does not resolve (the server stays down).
#[test]
fn unresolvable_hostnames_do_not_fail_the_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let _stop = StopHaproxy(dir.path().join("haproxy.pid"));
    let mut env: Vec<_> = haproxy_env(dir.path())
        .into_iter()
        .filter(|(k, _)| *k != "HAPROXY_TEMPLATE_FILE")
        .collect();
    env.push(("HAPROXY_USE_HOSTNAMES", "true".into()));
    env.push(("SIDECAR_NODE_NAME", "nonexistent.invalid".into()));
    let a1 = Backend::start("a1");
    let web = free_port(BIND);
    let agent = Agent::start(
        dir.path(),
        &[target("a1", "web", "http", a1.port, web)],
        &env,
    );
    wait_for("HAProxy serving the frontend", WAIT, || {
        // No server resolves: HAProxy answers itself (503).
        (http_get(BIND, web)?.0 == 503).then_some(())
    });
    let cfg = std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config");
    assert!(
        cfg.contains(&format!(
            "nonexistent.invalid:{} cookie nonexistent.invalid-{} init-addr last,libc,none",
            a1.port, a1.port
        )),
        "{cfg}"
    );
    let s = agent.proxy_status();
    assert!(s["haproxy"]["state"]["last_error"].is_null(), "{s}");
    assert_eq!(
        s["haproxy"]["quarantined"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
}
