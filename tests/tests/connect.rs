//! End to end: Consul-style sidecar registration (static.json `Connect.SidecarService`)
//! with the built `sidecar` driving a real HAProxy and a real Envoy. The proxy service
//! `<name>-sidecar-proxy` is registered with its port from the configured range and
//! Consul's default checks (TCP on its port, alias of the parent); its public listener
//! reaches the parent and its upstream listener on 127.0.0.1 reaches the destination's
//! healthy instances, following them as they come, fail and go.

mod proxy_common;

use proxy_common::*;
use sidecar_e2e::envoy::envoy_stat;
use sidecar_e2e::{free_port, wait_for};
use std::sync::atomic::Ordering;

const BIND: &str = "127.0.0.2";
const LOCAL: &str = "127.0.0.1";

/// The parent `web` (backend `w1`) with a sidecar whose upstreams are `db` on
/// 127.0.0.1:`up` and a service nobody runs on 127.0.0.1:`none`.
fn web_with_sidecar(w1: &Backend, web_port: u16, up: u16, none: u16) -> serde_json::Value {
    let mut t = target("w1", "web", "http", w1.port, web_port);
    // Consul's own spelling, as in its documentation.
    t["connect"] = serde_json::json!({"sidecar_service": {"proxy": {"upstreams": [
        {"destination_name": "db", "local_bind_port": up},
        {"destination_name": "nobody-runs-this", "local_bind_port": none}
    ]}}});
    t
}

/// Backend names answering a line over `n` new connections (the listeners are plain
/// TCP: the backend keeps an HTTP connection open, so one line is the exchange).
fn lines(ip: &str, port: u16, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).filter_map(|_| tcp_line(ip, port)).collect();
    v.sort();
    v.dedup();
    v
}

fn instance(agent: &Agent, id: &str) -> Option<serde_json::Value> {
    let doc: serde_json::Value = ureq::get(&format!("{}/api/services.json", agent.api))
        .call()
        .ok()?
        .into_json()
        .ok()?;
    doc["Services"]
        .as_object()?
        .values()
        .flat_map(|list| list.as_array().into_iter().flatten())
        .find(|s| s["ID"] == id)
        .cloned()
}

fn wait_instance_status(agent: &Agent, id: &str, status: u64) -> serde_json::Value {
    wait_for(&format!("{id} with status {status}"), WAIT, || {
        instance(agent, id).filter(|s| s["Status"] == status)
    })
}

/// What both proxies must do; `proxy_port` is the one port of the configured range.
fn sidecar_scenario(agent: &Agent, proxy_port: u16) {
    let (w1, d1, d2) = (
        Backend::start("w1"),
        Backend::start("d1"),
        Backend::start("d2"),
    );
    let (web_port, db_port) = (free_port(BIND), free_port(BIND));
    let (up, none) = (free_port(LOCAL), free_port(LOCAL));
    let web = web_with_sidecar(&w1, web_port, up, none);
    let db_d1 = target("d1", "db", "tcp", d1.port, db_port);
    let db_d2 = target("d2", "db", "tcp", d2.port, db_port);
    agent.set_targets(&[web.clone(), db_d1.clone()]);

    // Registered with Consul's defaults, ALIVE once the proxy listens and the parent is.
    let proxy = wait_instance_status(agent, "w1-sidecar-proxy", 0);
    assert_eq!(proxy["Name"], "web-sidecar-proxy", "{proxy}");
    assert_eq!(proxy["Ports"][0]["Port"], proxy_port, "{proxy}");
    assert_eq!(proxy["Ports"][0]["ServicePort"], 0, "{proxy}");
    let checks: serde_json::Value = ureq::get(&format!("{}/api/checks.json", agent.api))
        .call()
        .expect("checks.json")
        .into_json()
        .expect("json");
    let check = checks["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == "w1-sidecar-proxy")
        .cloned()
        .unwrap_or_else(|| panic!("no check report for the proxy: {checks}"));
    assert_eq!(check["type"], "All", "{check}");
    let message = check["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Tcp ok") && message.contains("Alias ok"),
        "{check}"
    );

    // The upstream reaches the destination; the public listener reaches the parent.
    wait_for("db through the upstream", WAIT, || {
        (tcp_line(LOCAL, up)? == "d1").then_some(())
    });
    assert_eq!(
        tcp_line(LOCAL, proxy_port).as_deref(),
        Some("w1"),
        "the public listener forwards to the parent"
    );
    assert!(
        tcp_line(LOCAL, none).is_none_or(|l| l.is_empty()),
        "an upstream to a service nobody runs carries nothing"
    );

    // The upstream follows the destination's instances and their health.
    agent.set_targets(&[web.clone(), db_d1.clone(), db_d2.clone()]);
    wait_for("d1 and d2 through the upstream", WAIT, || {
        (lines(LOCAL, up, 10) == ["d1", "d2"]).then_some(())
    });
    d1.healthy.store(false, Ordering::Relaxed);
    wait_for("only d2 through the upstream", WAIT, || {
        (lines(LOCAL, up, 10) == ["d2"]).then_some(())
    });
    d1.healthy.store(true, Ordering::Relaxed);

    // The alias check: the proxy is unhealthy while its parent is.
    w1.healthy.store(false, Ordering::Relaxed);
    wait_instance_status(agent, "w1-sidecar-proxy", 2);
    w1.healthy.store(true, Ordering::Relaxed);
    wait_instance_status(agent, "w1-sidecar-proxy", 0);

    // The registration removed from the file: the proxy service and its listeners go.
    let mut plain = web.clone();
    if let Some(o) = plain.as_object_mut() {
        o.remove("connect");
    }
    agent.set_targets(&[plain, db_d1, db_d2]);
    wait_instance_status(agent, "w1-sidecar-proxy", 1);
    wait_for("the upstream listener closed", WAIT, || {
        tcp_line(LOCAL, up).is_none().then_some(())
    });
}

#[test]
fn haproxy_carries_traffic_through_a_sidecar_proxys_listeners() {
    let dir = tempfile::tempdir().expect("tmp");
    let _stop = StopHaproxy(dir.path().join("haproxy.pid"));
    let proxy_port = free_port(LOCAL);
    let mut env = haproxy_env(dir.path(), BIND);
    env.push((
        "SIDECAR_CONNECT_PORT_RANGE",
        format!("{proxy_port}-{proxy_port}"),
    ));
    let agent = Agent::start(dir.path(), &[], &env);
    sidecar_scenario(&agent, proxy_port);
    let status = agent.proxy_status();
    assert!(
        status["haproxy"]["state"]["last_error"].is_null(),
        "no refused config: {status}"
    );
}

#[test]
fn envoy_carries_traffic_through_a_sidecar_proxys_listeners() {
    let dir = tempfile::tempdir().expect("tmp");
    let ads = free_port(LOCAL);
    let proxy_port = free_port(LOCAL);
    let agent = Agent::start(
        dir.path(),
        &[],
        &[
            ("ENVOY_USE_GRPC_API", "true".into()),
            ("ENVOY_GRPC_PORT", ads.to_string()),
            ("ENVOY_BIND_IP", BIND.into()),
            (
                "SIDECAR_CONNECT_PORT_RANGE",
                format!("{proxy_port}-{proxy_port}"),
            ),
        ],
    );
    let (_envoy, admin) = start_envoy(dir.path(), ads);
    sidecar_scenario(&agent, proxy_port);
    let status = agent.proxy_status();
    assert_eq!(status["envoy"]["counters"]["nacks"], 0, "{status}");
    assert_eq!(
        envoy_stat(admin, "listener_manager.lds.update_rejected"),
        Some(0)
    );
    assert_eq!(
        envoy_stat(admin, "cluster_manager.cds.update_rejected"),
        Some(0)
    );
}
