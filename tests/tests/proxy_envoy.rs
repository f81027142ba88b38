//! End to end: the built `sidecar` (static discovery, health checks, the embedded
//! `proxy-envoy` plugin, the ADS server) drives a real Envoy 1.40 bootstrapped with
//! `sidecar envoy-bootstrap`; real HTTP and TCP traffic to real backends.

mod proxy_common;

use proxy_common::*;
use sidecar_e2e::envoy::envoy_stat;
use sidecar_e2e::{free_port, wait_for};

const BIND: &str = "127.0.0.2";

#[test]
fn envoy_follows_services_added_unhealthy_drained_and_removed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a1, a2, t1) = (
        Backend::start("a1"),
        Backend::start("a2"),
        Backend::start("t1"),
    );
    let (web, db) = (free_port(BIND), free_port(BIND));
    let ads = free_port("127.0.0.1");
    let web_a1 = target("a1", "web", "http", a1.port, web);
    let web_a2 = target("a2", "web", "http", a2.port, web);
    let db_t1 = target("t1", "db", "tcp", t1.port, db);
    let agent = Agent::start(
        dir.path(),
        &[web_a1.clone(), db_t1.clone()],
        &[
            ("ENVOY_USE_GRPC_API", "true".into()),
            ("ENVOY_GRPC_PORT", ads.to_string()),
            ("ENVOY_BIND_IP", BIND.into()),
        ],
    );
    let (_envoy, admin) = start_envoy(dir.path(), ads);

    wait_for("HTTP through Envoy", WAIT, || {
        (http_get(BIND, web)? == (200, "a1".to_string())).then_some(())
    });
    assert_eq!(
        tcp_line(BIND, db).as_deref(),
        Some("t1"),
        "TcpProxy listener"
    );

    // Added, unhealthy and healthy again, drained.
    follow_add_unhealthy_drain(
        &agent,
        &[web_a1.clone(), web_a2.clone(), db_t1.clone()],
        &a1,
        BIND,
        web,
    );

    // Removed: its listener goes, the other service keeps working.
    agent.set_targets(std::slice::from_ref(&db_t1));
    wait_for("web listener removed", WAIT, || {
        http_get(BIND, web).is_none().then_some(())
    });
    assert_eq!(tcp_line(BIND, db).as_deref(), Some("t1"));

    // What the daemon reports, and what Envoy says about it.
    let status = agent.proxy_status();
    let envoy = &status["envoy"];
    assert_eq!(envoy["streams"][0]["node_id"], "host1", "{status}");
    assert_eq!(envoy["counters"]["nacks"], 0, "{status}");
    assert_eq!(
        envoy_stat(admin, "cluster_manager.cds.update_rejected"),
        Some(0)
    );
    assert_eq!(
        envoy_stat(admin, "listener_manager.lds.update_rejected"),
        Some(0)
    );
    assert_eq!(envoy_stat(admin, "control_plane.connected_state"), Some(1));
}
