//! The xDS server with a real Envoy 1.40: the `proxy-envoy` emitter (compiled natively),
//! the ADS server and publisher as the agent runs them, traffic through Envoy's
//! listeners to real backends, and Envoy's own admin interface as the judge.

mod proxy_common;

use proxy_common::*;
use sidecar::proxy::feed::ready_now;
use sidecar::proxy::xds::{self, EnvoyConfig};
use sidecar::shared_catalog::SharedCatalog;
use sidecar_catalog::{Service, Status};
use sidecar_plugin_host::{ProxyEmitter, XdsResource};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

struct World {
    /// Owns the server's tasks: dropping the world stops the control plane.
    _rt: tokio::runtime::Runtime,
    catalog: Arc<SharedCatalog>,
    status: Arc<xds::XdsStatus>,
    tamper: Arc<Tamper>,
    ads_port: u16,
}

impl World {
    fn start() -> World {
        Self::start_on(free_port("127.0.0.1"), true)
    }

    /// An xDS server on `ads_port`; `ready` false holds publishing back (the agent's
    /// readiness signal before the first complete discovery).
    fn start_on(ads_port: u16, ready: bool) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (catalog, _outbound) = SharedCatalog::with_defaults("host1", "default");
        rt.spawn(catalog.clone().run_publisher());
        let settings = proxy_envoy::resources::Settings {
            bind_ip: "127.0.0.1".parse().expect("ip"),
            ..Default::default()
        };
        let tamper = Arc::new(Tamper {
            inner: Arc::new(NativeEnvoy(settings)),
            extra: parking_lot::Mutex::new(Vec::new()),
        });
        let cfg = EnvoyConfig {
            grpc_port: ads_port,
            ..EnvoyConfig::load(&sidecar::config::Env::default()).expect("defaults")
        };
        let emitter: Arc<dyn ProxyEmitter> = tamper.clone();
        let readiness = if ready {
            ready_now()
        } else {
            let (tx, rx) = tokio::sync::watch::channel(false);
            std::mem::forget(tx);
            rx
        };
        let (status, _task) = rt
            .block_on(xds::spawn(&cfg, emitter, catalog.clone(), readiness))
            .expect("xDS server");
        World {
            _rt: rt,
            catalog,
            status,
            tamper,
            ads_port,
        }
    }

    fn set(&self, services: Vec<Service>) {
        self.catalog.sync_local(services);
    }

    fn counter(&self, name: &str) -> u64 {
        self.status.to_json()["counters"][name]
            .as_u64()
            .unwrap_or(0)
    }
}

#[test]
fn envoy_follows_the_catalog_over_ads() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start();
    let (a1, a2, t1) = (
        Backend::start("a1"),
        Backend::start("a2"),
        Backend::start("t1"),
    );
    let (web_port, db_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let web = |id: &str, b: &Backend| service(id, "web", "http", b.port, web_port);
    let db = service("db1", "db", "tcp", t1.port, db_port);
    w.set(vec![web("a1", &a1), db.clone()]);

    // Cold start: HTTP and TCP through Envoy.
    let (_envoy, admin) = start_envoy(dir.path(), w.ads_port, "node1");
    wait_for("HTTP through Envoy", WAIT, || {
        (http_get("127.0.0.1", web_port)? == (200, "a1".to_string())).then_some(())
    });
    assert_eq!(
        tcp_line("127.0.0.1", db_port).as_deref(),
        Some("t1"),
        "TcpProxy accepted and routing"
    );
    let dump = admin_get(admin, "/config_dump");
    assert!(dump.contains("\"web:") && dump.contains("envoy.filters.network.tcp_proxy"));

    // Scale out: both instances get traffic.
    w.set(vec![web("a1", &a1), web("a2", &a2), db.clone()]);
    wait_for("both web instances", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1", "a2"]).then_some(())
    });

    // An unhealthy instance gets no traffic until it recovers.
    let mut sick = web("a1", &a1);
    sick.status = Status::Unhealthy;
    w.set(vec![sick, web("a2", &a2), db.clone()]);
    wait_for("only a2", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a2"]).then_some(())
    });
    w.set(vec![web("a1", &a1), web("a2", &a2), db.clone()]);
    wait_for("both again", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1", "a2"]).then_some(())
    });
    // Draining (sticky against ALIVE, as in Sidecar): no new requests.
    assert!(w.catalog.drain("a2").is_ok());
    wait_for("only a1", WAIT, || {
        (seen("127.0.0.1", web_port, 10) == ["a1"]).then_some(())
    });

    // Removed: the listener goes away; the other service keeps working.
    w.set(vec![db.clone()]);
    wait_for("web listener removed", WAIT, || {
        http_get("127.0.0.1", web_port).is_none().then_some(())
    });
    assert_eq!(tcp_line("127.0.0.1", db_port).as_deref(), Some("t1"));

    // Per-type ACKs are reported for the node; no NACKs, no phase timeouts.
    let status = w.status.to_json();
    let stream = &status["streams"][0];
    assert_eq!(stream["node_id"], "node1");
    assert!(
        stream["types"].as_array().is_some_and(|t| t.len() >= 3),
        "{stream}"
    );
    assert_eq!(w.counter("nacks"), 0);
    assert_eq!(w.counter("phase_timeouts"), 0);
    // Envoy writes `:` in cluster names as `_` in stat names.
    let stat = format!("cluster.db_{db_port}.init_fetch_timeout");
    assert_eq!(
        envoy_stat(admin, &stat),
        Some(0),
        "no cluster waited for EDS"
    );
}

#[test]
fn a_rejected_resource_keeps_the_last_good_config_without_a_resend_loop() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start();
    let a1 = Backend::start("a1");
    let a2 = Backend::start("a2");
    let web_port = free_port("127.0.0.1");
    w.set(vec![service("a1", "web", "http", a1.port, web_port)]);
    let (_envoy, admin) = start_envoy(dir.path(), w.ads_port, "node1");
    wait_for("HTTP through Envoy", WAIT, || {
        (http_get("127.0.0.1", web_port)? == (200, "a1".to_string())).then_some(())
    });

    // A listener our validation cannot judge (an unknown filter): Envoy NACKs LDS.
    let bogus = xds_api::pb::envoy::config::listener::v3::Listener {
        name: "bogus".into(),
        address: Some(xds_api::pb::envoy::config::core::v3::Address {
            address: Some(
                xds_api::pb::envoy::config::core::v3::address::Address::SocketAddress(
                    xds_api::pb::envoy::config::core::v3::SocketAddress {
                        address: "127.0.0.1".into(),
                        port_specifier: Some(
                            xds_api::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(
                                u32::from(free_port("127.0.0.1")),
                            ),
                        ),
                        ..Default::default()
                    },
                ),
            ),
        }),
        filter_chains: vec![xds_api::pb::envoy::config::listener::v3::FilterChain {
            filters: vec![xds_api::pb::envoy::config::listener::v3::Filter {
                name: "no.such.filter".into(),
                config_type: Some(
                    xds_api::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(
                        xds_api::pb::google::protobuf::Any {
                            type_url: "type.googleapis.com/no.such.Filter".into(),
                            value: Vec::new(),
                        },
                    ),
                ),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    *w.tamper.extra.lock() = vec![XdsResource {
        type_url: xds::resources::LISTENER.into(),
        name: "bogus".into(),
        value: prost::Message::encode_to_vec(&bogus),
    }];
    // Any catalog change makes the publisher emit again; endpoints move to a2 too.
    w.set(vec![service("a2", "web", "http", a2.port, web_port)]);
    wait_for("the NACK", WAIT, || (w.counter("nacks") >= 1).then_some(()));
    let nack = w.status.to_json()["last_nack"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!nack.is_empty(), "Envoy's error_detail is reported");
    assert!(envoy_stat(admin, "listener_manager.lds.update_rejected").unwrap_or(0) >= 1);
    // Envoy still serves, with the endpoint change (EDS was not affected).
    wait_for("a2 via EDS", WAIT, || {
        (seen("127.0.0.1", web_port, 5) == ["a2"]).then_some(())
    });
    // No resend loop.
    let pushes = w.counter("pushes");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        w.counter("pushes"),
        pushes,
        "the rejected version is not re-sent"
    );

    // The next good state is accepted.
    w.tamper.extra.lock().clear();
    w.set(vec![service("a1", "web", "http", a1.port, web_port)]);
    wait_for("a1 again", WAIT, || {
        (seen("127.0.0.1", web_port, 5) == ["a1"]).then_some(())
    });
    assert!(
        admin_get(admin, "/listeners")
            .lines()
            .all(|l| !l.starts_with("bogus"))
    );
}

#[test]
fn every_envoy_gets_the_same_resources_and_empty_services_answer_503() {
    let dir = tempfile::tempdir().expect("tmp");
    let w = World::start();
    let a1 = Backend::start("a1");
    let (web_port, empty_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let mut gone = service("x1", "empty", "http", 1, empty_port);
    gone.ports[0].ip = "not-an-ip".into();
    w.set(vec![service("a1", "web", "http", a1.port, web_port), gone]);
    let (_e1, admin1) = start_envoy(dir.path(), w.ads_port, "node1");
    let (_e2, admin2) = start_envoy(dir.path(), w.ads_port, "node2");
    for admin in [admin1, admin2] {
        wait_for("endpoint in each Envoy", WAIT, || {
            admin_get(admin, "/clusters")
                .contains(&format!("web:{web_port}::127.0.0.1:{}", a1.port))
                .then_some(())
        });
    }
    assert_eq!(w.status.connected(), 2);
    // A service whose only instance has no usable address: Envoy answers 503 at once.
    wait_for("503 from the empty service", WAIT, || {
        (http_get("127.0.0.1", empty_port)?.0 == 503).then_some(())
    });
}

#[test]
fn a_restarted_control_plane_does_not_wipe_envoy() {
    let dir = tempfile::tempdir().expect("tmp");
    let a1 = Backend::start("a1");
    let a2 = Backend::start("a2");
    let web_port = free_port("127.0.0.1");
    let w = World::start();
    let ads_port = w.ads_port;
    w.set(vec![service("a1", "web", "http", a1.port, web_port)]);
    let (_envoy, admin) = start_envoy(dir.path(), ads_port, "node1");
    wait_for("HTTP through Envoy", WAIT, || {
        (http_get("127.0.0.1", web_port)? == (200, "a1".to_string())).then_some(())
    });
    // The daemon goes away: Envoy keeps serving.
    drop(w);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        http_get("127.0.0.1", web_port),
        Some((200, "a1".to_string()))
    );

    // A restarted daemon that is not ready yet (discovery incomplete) serves nothing,
    // even with an empty catalog: Envoy keeps its listeners.
    let w = World::start_on(ads_port, false);
    wait_for("Envoy reconnected", WAIT, || {
        (w.status.connected() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.counter("pushes"), 0, "nothing sent before readiness");
    assert_eq!(
        http_get("127.0.0.1", web_port),
        Some((200, "a1".to_string()))
    );
    drop(w);

    // Restarted and ready with changed state: Envoy converges, no warming stall.
    let w = World::start_on(ads_port, true);
    w.set(vec![service("a2", "web", "http", a2.port, web_port)]);
    wait_for("a2 after the restart", WAIT, || {
        (seen("127.0.0.1", web_port, 5) == ["a2"]).then_some(())
    });
    assert_eq!(w.counter("nacks"), 0);
    let stat = format!("cluster.web_{web_port}.init_fetch_timeout");
    assert_eq!(envoy_stat(admin, &stat), Some(0));
}
