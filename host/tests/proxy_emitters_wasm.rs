//! The embedded emitter plugins, run as WebAssembly through the plugin runtime: the
//! `proxy-envoy` output decodes as the xDS v3 types (with our TcpProxy definition),
//! and the `proxy-haproxy` output passes `haproxy -c`.

use prost::Message;
use sidecar_catalog::{Port, PortKind, Service, Status};
use sidecar_plugin_host::{EmitRequest, Emitted, LoadOptions, ProxyEmitter, Runtime};
use sidecar_plugin_host::{NamerVars, PluginsConfig};
use sidecar_plugin_sdk::envoy::TcpProxy;
use std::sync::Arc;
use xds_api::pb::envoy::config::cluster::v3::Cluster;
use xds_api::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use xds_api::pb::envoy::config::listener::v3::{Listener, filter};
use xds_api::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

fn svc(id: &str, name: &str, mode: &str, port: u16, service_port: u16) -> Service {
    Service {
        id: id.into(),
        name: name.into(),
        image: format!("{name}:1"),
        hostname: "host1".into(),
        ports: vec![Port {
            kind: PortKind::Tcp,
            port,
            service_port,
            ip: "10.0.0.1".into(),
        }],
        proxy_mode: mode.into(),
        status: Status::Alive,
        ..Service::default()
    }
}

fn request() -> EmitRequest {
    EmitRequest {
        services: vec![
            svc("a", "web", "http", 9001, 10000),
            svc("b", "db", "tcp", 9002, 10001),
            svc("c", "chat", "ws", 9003, 10002),
        ],
        hostname: "host1".into(),
        cluster_name: "default".into(),
        ..EmitRequest::default()
    }
}

async fn emitter(name: &str, settings: Vec<(&str, &str)>) -> Arc<dyn ProxyEmitter> {
    let env = NamerVars::default();
    let mut cfg = PluginsConfig::load(None, &env).expect("defaults");
    cfg.require_emitter(
        name,
        settings
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let loaded = Runtime::load(&cfg, &LoadOptions::default())
        .await
        .expect("plugins load");
    loaded.emitters.get(name).cloned().expect("emitter loaded")
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_envoy_output_decodes_as_xds_v3() {
    let e = emitter("proxy-envoy", vec![("bind-ip", "127.0.0.2")]).await;
    let Emitted::Xds(list) = e.emit(request()).await.expect("emits") else {
        panic!("expected xDS resources")
    };
    let of = |ty: &str| -> Vec<_> { list.iter().filter(|r| r.type_url.ends_with(ty)).collect() };
    assert_eq!(of(".Cluster").len(), 3);
    assert_eq!(of(".ClusterLoadAssignment").len(), 3);
    assert_eq!(of(".Listener").len(), 3);
    for r in of(".Cluster") {
        let c = Cluster::decode(r.value.as_slice()).expect("Cluster");
        assert_eq!(c.name, r.name);
        assert!(c.eds_cluster_config.is_some());
    }
    for r in of(".ClusterLoadAssignment") {
        let cla = ClusterLoadAssignment::decode(r.value.as_slice()).expect("CLA");
        assert_eq!(cla.endpoints[0].lb_endpoints.len(), 1);
    }
    for r in of(".Listener") {
        let l = Listener::decode(r.value.as_slice()).expect("Listener");
        let f = &l.filter_chains[0].filters[0];
        let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type else {
            panic!("typed config")
        };
        match l.name.as_str() {
            "db:10001" => {
                assert_eq!(
                    any.type_url,
                    "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
                );
                let t = TcpProxy::decode(any.value.as_slice()).expect("TcpProxy");
                assert_eq!(
                    (t.stat_prefix.as_str(), t.cluster.as_str()),
                    ("ingress_tcp", "db:10001")
                );
            }
            name => {
                let h = HttpConnectionManager::decode(any.value.as_slice()).expect("HCM");
                assert_eq!(h.upgrade_configs.len(), usize::from(name == "chat:10002"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_haproxy_output_passes_haproxy_check() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("stats.sock").display().to_string();
    let e = emitter(
        "proxy-haproxy",
        vec![
            ("bind-ip", "127.0.0.2"),
            ("user", ""),
            ("stats-socket", &sock),
        ],
    )
    .await;
    let mut req = request();
    req.services.push(svc("d", "odd", "", 9004, 10003));
    let Emitted::ConfigFile(text) = e.emit(req).await.expect("emits") else {
        panic!("expected a config file")
    };
    assert!(
        text.contains("server host1-a 10.0.0.1:9001 cookie host1-9001"),
        "{text}"
    );
    assert!(
        text.contains("frontend odd-10003\n    mode http"),
        "empty ProxyMode is http"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, &text).expect("write");
    let out = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("haproxy runs (scripts/setup.sh setup_haproxy)");
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}
