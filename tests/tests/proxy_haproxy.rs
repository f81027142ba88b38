//! End to end: the built `sidecar` (static discovery, health checks, the embedded
//! `proxy-haproxy` plugin with a user template) drives a real HAProxy 2.6 in
//! master-worker mode; real HTTP and TCP traffic to real backends.

mod proxy_common;

use proxy_common::*;
use sidecar_e2e::{free_port, wait_for, workspace_root};
use std::path::Path;

const BIND: &str = "127.0.0.2";

/// Stops the HAProxy the agent started (its master, by pid) when the test ends.
struct StopHaproxy(std::path::PathBuf);

impl Drop for StopHaproxy {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn haproxy_env(dir: &Path) -> Vec<(&'static str, String)> {
    let p = |f: &str| dir.join(f).display().to_string();
    vec![
        ("HAPROXY_DISABLE", "false".into()),
        ("HAPROXY_CONFIG_FILE", p("haproxy.cfg")),
        ("HAPROXY_PID_FILE", p("haproxy.pid")),
        ("HAPROXY_STATS_SOCKET", p("stats.sock")),
        ("HAPROXY_MASTER_SOCKET", p("master.sock")),
        ("HAPROXY_BIND_IP", BIND.into()),
        ("HAPROXY_USER", String::new()),
        ("HAPROXY_STATS_PORT", "0".into()),
        ("HAPROXY_MIN_RELOAD_INTERVAL", "200ms".into()),
        ("HAPROXY_TEMPLATE_FILE", p("haproxy.cfg.j2")),
    ]
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

    // A config HAProxy refuses: rejected by `haproxy -c`, never installed, visible in
    // the API; traffic keeps flowing on the last good config.
    let good = std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config");
    let poison = target("p1", "poison", "http", a1.port, free_port(BIND));
    agent.set_targets(&[web_a1.clone(), web_a2.clone(), db_t1.clone(), poison]);
    let err = wait_for("the verify failure in the API", WAIT, || {
        let s = agent.proxy_status();
        let e = s["haproxy"]["state"]["last_error"].clone();
        (e["stage"] == "verify").then_some(e)
    });
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("bogus_directive"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("haproxy.cfg")).expect("config"),
        good
    );
    assert_eq!(seen(BIND, web, 10), ["a1"]);
    assert_eq!(tcp_line(BIND, db).as_deref(), Some("t1"));

    // Removed (and the poison gone): the next config goes through.
    agent.set_targets(std::slice::from_ref(&web_a1));
    wait_for("db frontend removed", WAIT, || {
        tcp_line(BIND, db).is_none().then_some(())
    });
    wait_for("error cleared", WAIT, || {
        agent.proxy_status()["haproxy"]["state"]["last_error"]
            .is_null()
            .then_some(())
    });
    assert_eq!(seen(BIND, web, 5), ["a1"]);
    let s = agent.proxy_status();
    assert!(
        s["haproxy"]["counters"]["verify_failures"].as_u64() >= Some(1),
        "{s}"
    );
}
