//! The plugin runtime against real components built by build.rs (the test-only `chaos`,
//! `check-v010` and `check-v011` guests included): isolation, limits, grants, versioning.

use sidecar_catalog::Service;
use sidecar_plugin_host::{
    AllocatorChoice, BreakerPolicy, CacheSetting, CheckRequest, CheckStatus, LoadOptions,
    LoadedPlugins, PluginError, PluginInfo, PluginStatus, Runtime, built_wasm_dir,
};
use sidecar_plugin_host::{NamerVars, PluginsConfig};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

fn wasm(name: &str) -> String {
    let path = built_wasm_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: `cargo build --release` builds it",
        path.display()
    );
    path.display().to_string()
}

/// A plugins.toml with the chaos plugin three ways (no grants, with grants, rejecting
/// its settings) and the 0.1.0 and 0.1.1 plugins.
fn config_text() -> String {
    let chaos = wasm("chaos");
    let v010 = wasm("check_v010");
    let v011 = wasm("check_v011");
    format!(
        r#"
[checks]
Chaos = "chaos"
ChaosNet = "chaos-net"
ChaosBroken = "chaos-broken"
Old = "check-v010"
Old011 = "check-v011"

[plugins.chaos]
wasm = "{chaos}"
limits = {{ memory_mb = 32, timeout = "2s" }}

[plugins.chaos-net]
wasm = "{chaos}"
grants = {{ http = ["127.0.0.1:*"], exec = true }}

[plugins.chaos-broken]
wasm = "{chaos}"
settings = {{ fail = "this plugin refuses to start" }}

[plugins.check-v010]
wasm = "{v010}"

[plugins.check-v011]
wasm = "{v011}"
grants = {{ http = ["127.0.0.1:*"] }}
"#
    )
}

struct Loaded {
    plugins: LoadedPlugins,
    _dir: tempfile::TempDir,
}

async fn load_with(text: &str, options: LoadOptions) -> anyhow::Result<Loaded> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("plugins.toml");
    std::fs::write(&file, text)?;
    let config = PluginsConfig::load(Some(&file), &NamerVars::default())?;
    let options = LoadOptions {
        cache: CacheSetting::Dir(dir.path().join("cache")),
        ..options
    };
    Ok(Loaded {
        plugins: Runtime::load(&config, &options).await?,
        _dir: dir,
    })
}

async fn load() -> Loaded {
    load_with(&config_text(), LoadOptions::default())
        .await
        .expect("plugins load")
}

async fn check(
    p: &LoadedPlugins,
    check_type: &str,
    args: &str,
    timeout: Duration,
) -> Result<(CheckStatus, String), PluginError> {
    let req = CheckRequest {
        service: Service {
            name: "svc".into(),
            ..Service::default()
        },
        args: args.into(),
        timeout,
        host_ip: "127.0.0.1".into(),
    };
    let checker = p
        .checks
        .get(check_type)
        .unwrap_or_else(|| panic!("no check type {check_type}"));
    checker.check(req).await.map(|o| (o.status, o.message))
}

async fn assert_ok_after(p: &LoadedPlugins, what: &str) {
    let next = check(p, "Chaos", "ok", Duration::from_secs(3)).await;
    assert_eq!(
        next.map(|r| r.0),
        Ok(CheckStatus::Healthy),
        "the call after {what} works"
    );
}

/// What `describe()` says about one plugin.
fn info(p: &LoadedPlugins, name: &str) -> PluginInfo {
    p.describe()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_interrupted_at_the_deadline() {
    let l = load().await;
    let started = Instant::now();
    let r = check(&l.plugins, "Chaos", "loop", Duration::from_millis(500)).await;
    let took = started.elapsed();
    match r {
        Err(PluginError::Timeout { plugin, .. }) => assert_eq!(plugin, "chaos"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "interrupted after {took:?}"
    );
    assert_ok_after(&l.plugins, "a timeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_memory_is_a_named_trap() {
    let l = load().await;
    match check(&l.plugins, "Chaos", "oom", Duration::from_secs(3)).await {
        Err(e @ PluginError::Trap { .. }) => {
            let text = e.to_string();
            assert!(
                text.starts_with("plugin chaos crashed: out of memory"),
                "{text}"
            );
            assert!(text.contains("cap of 32 MiB"), "{text}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_ok_after(&l.plugins, "running out of memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_trap_quoting_the_panic_message() {
    let l = load().await;
    match check(&l.plugins, "Chaos", "trap", Duration::from_secs(3)).await {
        Err(e @ PluginError::Trap { .. }) => {
            assert_eq!(e.plugin(), "chaos");
            assert!(e.to_string().contains("chaos: deliberate panic"), "{e}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_ok_after(&l.plugins, "a panic").await;
    let stats = info(&l.plugins, "chaos").stats;
    assert_eq!((stats.crashes, stats.calls), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_without_a_grant_is_refused_before_connecting() {
    let l = load().await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!(
        "http://127.0.0.1:{}/",
        listener.local_addr().expect("addr").port()
    );

    let r = check(
        &l.plugins,
        "Chaos",
        &format!("http {url}"),
        Duration::from_secs(3),
    )
    .await;
    match r {
        Err(PluginError::Failed { plugin, message }) => {
            assert_eq!(plugin, "chaos");
            assert!(
                message.contains("Denied") && message.contains("no http grant"),
                "{message}"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(listener.accept().is_err(), "no connection was made");

    // The same component with the grant reaches the server.
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(false).expect("blocking");
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let r = check(
        &l.plugins,
        "ChaosNet",
        &format!("http {url}"),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(r, Ok((CheckStatus::Healthy, "HTTP 204".to_string())));
    server.join().expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_needs_its_grant() {
    let l = load().await;
    let denied = check(
        &l.plugins,
        "Chaos",
        "exec /bin/true",
        Duration::from_secs(3),
    )
    .await;
    assert!(
        matches!(&denied, Err(PluginError::Failed { message, .. }) if message.contains("Denied")),
        "{denied:?}"
    );
    let allowed = check(
        &l.plugins,
        "ChaosNet",
        "exec /bin/true",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(allowed.map(|r| r.0), Ok(CheckStatus::Healthy));
}

/// 0.1.1's `http` had `get` only; this host's (0.1.2) adds `get-with-bearer-token`.
/// The 0.1.1 plugin links its `http@0.1.1` import and `log.log-fields` against them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_wit_0_1_1_runs_on_this_host() {
    let l = load().await;
    assert_eq!(info(&l.plugins, "check-v011").wit_version, "0.1.1");
    let r = check(&l.plugins, "Old011", "", Duration::from_secs(3)).await;
    assert_eq!(
        r,
        Ok((
            CheckStatus::Healthy,
            "built against sidecar:plugin@0.1.1".to_string()
        ))
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let r = check(
        &l.plugins,
        "Old011",
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(r, Ok((CheckStatus::Healthy, "HTTP 200".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_wit_0_1_0_runs_on_this_host() {
    let l = load().await;
    assert_eq!(info(&l.plugins, "check-v010").wit_version, "0.1.0");
    let r = check(&l.plugins, "Old", "", Duration::from_secs(3)).await;
    assert_eq!(
        r,
        Ok((
            CheckStatus::Healthy,
            "built against sidecar:plugin@0.1.0".to_string()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_settings_disable_the_plugin() {
    let l = load().await;
    let problems = l.plugins.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "chaos-broken");
    assert!(problems[0].1.contains("this plugin refuses to start"));
    let r = check(&l.plugins, "ChaosBroken", "ok", Duration::from_secs(3)).await;
    assert!(
        matches!(r, Err(PluginError::Unavailable { ref plugin, .. }) if plugin == "chaos-broken"),
        "{r:?}"
    );
    assert!(matches!(
        info(&l.plugins, "chaos-broken").status,
        PluginStatus::Disabled(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_use_separate_instances() {
    let l = load().await;
    let checks = (0..8).map(|_| check(&l.plugins, "Chaos", "ok", Duration::from_secs(5)));
    for r in futures::future::join_all(checks).await {
        assert_eq!(r.map(|r| r.0), Ok(CheckStatus::Healthy));
    }
    let stats = info(&l.plugins, "chaos").stats;
    assert_eq!(stats.calls, 8);
    assert!(
        stats.instantiations <= 9 && stats.idle == stats.instantiations as usize,
        "{stats:?}"
    );
}

/// Wasm memories never shrink: an instance that grew by megabytes in one call is
/// replaced afterwards instead of holding that memory for the rest of its life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_grew_large_is_replaced_after_the_call() {
    let l = load().await;
    let stats = || info(&l.plugins, "chaos").stats;
    let t = Duration::from_secs(5);
    assert_eq!(
        check(&l.plugins, "Chaos", "ok", t).await.map(|r| r.0),
        Ok(CheckStatus::Healthy)
    );
    let first = stats().instantiations;
    assert_eq!(
        check(&l.plugins, "Chaos", "alloc 2", t).await.map(|r| r.0),
        Ok(CheckStatus::Healthy)
    );
    assert_eq!(
        check(&l.plugins, "Chaos", "ok", t).await.map(|r| r.0),
        Ok(CheckStatus::Healthy)
    );
    assert_eq!(
        stats().instantiations,
        first,
        "a small growth keeps the instance"
    );

    assert_eq!(
        check(&l.plugins, "Chaos", "alloc 20", t).await.map(|r| r.0),
        Ok(CheckStatus::Healthy)
    );
    assert_eq!(stats().idle, 0, "the grown instance was dropped");
    assert_eq!(
        check(&l.plugins, "Chaos", "ok", t).await.map(|r| r.0),
        Ok(CheckStatus::Healthy)
    );
    assert_eq!(
        stats().instantiations,
        first + 1,
        "the next call got a fresh instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_crashes_trip_the_circuit_breaker() {
    let breaker = BreakerPolicy {
        threshold: 2,
        base_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_secs(1),
    };
    let l = load_with(
        &config_text(),
        LoadOptions {
            breaker,
            ..LoadOptions::default()
        },
    )
    .await
    .expect("load");
    for _ in 0..2 {
        assert!(matches!(
            check(&l.plugins, "Chaos", "trap", Duration::from_secs(3)).await,
            Err(PluginError::Trap { .. })
        ));
    }
    let refused = check(&l.plugins, "Chaos", "ok", Duration::from_secs(3)).await;
    assert!(
        matches!(&refused, Err(PluginError::Unavailable { reason, .. }) if reason.contains("2 consecutive crashes")),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_ok_after(&l.plugins, "the backoff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_allocator_works_too() {
    let l = load_with(
        &config_text(),
        LoadOptions {
            allocator: AllocatorChoice::OnDemand,
            ..LoadOptions::default()
        },
    )
    .await
    .expect("load");
    assert_eq!(
        l.plugins.allocator(),
        sidecar_plugin_host::Allocator::OnDemand
    );
    assert_ok_after(&l.plugins, "loading").await;
    assert!(matches!(
        check(&l.plugins, "Chaos", "oom", Duration::from_secs(3)).await,
        Err(PluginError::Trap { .. })
    ));
    assert_ok_after(&l.plugins, "running out of memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_used_as_the_wrong_kind_is_a_load_error_naming_the_line() {
    let text = format!(
        "namer = \"chaos\"\n\n[plugins.chaos]\nwasm = \"{}\"\n",
        wasm("chaos")
    );
    let e = load_with(&text, LoadOptions::default())
        .await
        .err()
        .expect("must fail");
    let msg = format!("{e:#}");
    assert!(
        msg.contains(
            "plugins.toml:1: namer uses plugin `chaos`, which is a health-check, not a namer"
        ),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_component_is_a_load_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"definitely not wasm").expect("write");
    let text = format!(
        "[checks]\nX = \"bogus\"\n\n[plugins.bogus]\nwasm = \"{}\"\n",
        bogus.display()
    );
    let e = load_with(&text, LoadOptions::default())
        .await
        .err()
        .expect("must fail");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("plugins.toml:4: plugin `bogus`") && msg.contains("not a valid component"),
        "{msg}"
    );
}

/// The daemon's side of `local-services`, with fixed answers.
#[derive(Debug)]
struct FixedLocal;

impl sidecar_plugin_host::LocalServices for FixedLocal {
    fn ttl_report(&self, id: &str) -> Option<sidecar_plugin_host::TtlReport> {
        use sidecar_plugin_host::{TtlReport, TtlState};
        let (state, age) = match id {
            "fresh" => (TtlState::Pass, Duration::from_secs(1)),
            "warned" => (TtlState::Warn, Duration::from_secs(1)),
            "failed" => (TtlState::Fail, Duration::from_secs(1)),
            "stale" => (TtlState::Pass, Duration::from_secs(60)),
            _ => return None,
        };
        Some(TtlReport {
            state,
            note: format!("note of {id}"),
            age,
        })
    }

    fn status(&self, id: &str) -> Option<sidecar_catalog::Status> {
        match id {
            "up" => Some(sidecar_catalog::Status::Alive),
            "down" => Some(sidecar_catalog::Status::Unhealthy),
            _ => None,
        }
    }
}

async fn run_check(l: &Loaded, check_type: &str, id: &str, args: &str) -> (CheckStatus, String) {
    let (_, checker) = l
        .plugins
        .checker(check_type)
        .unwrap_or_else(|| panic!("{check_type} is registered"));
    let r = checker
        .check(CheckRequest {
            service: Service {
                id: id.into(),
                ..Service::default()
            },
            args: args.into(),
            timeout: Duration::from_secs(2),
            host_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{check_type} {args}: {e}"));
    (r.status, r.message)
}

/// The default plugins of the 0.1.2 check types, through the `net` and
/// `local-services` imports; unknown types are no checker at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_ttl_and_alias_checks_and_unknown_types() {
    let options = LoadOptions {
        local: Some(std::sync::Arc::new(FixedLocal)),
        ..LoadOptions::default()
    };
    let l = load_with("", options).await.expect("defaults load");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let (status, msg) = run_check(&l, "Tcp", "x", &format!("127.0.0.1:{open}")).await;
    assert_eq!(status, CheckStatus::Healthy, "{msg}");
    let closed = closed_port();
    let (status, msg) = run_check(&l, "tcp", "x", &format!("127.0.0.1:{closed}")).await;
    assert_eq!(
        status,
        CheckStatus::Unhealthy,
        "case-insensitive name: {msg}"
    );
    assert!(msg.contains("refused"), "{msg}");

    for (id, want) in [
        ("fresh", CheckStatus::Healthy),
        ("warned", CheckStatus::Healthy),
        ("failed", CheckStatus::Unhealthy),
        ("stale", CheckStatus::Unhealthy),
        ("never", CheckStatus::Unhealthy),
    ] {
        let (status, msg) = run_check(&l, "Ttl", id, "30s").await;
        assert_eq!(status, want, "{id}: {msg}");
    }
    let (_, msg) = run_check(&l, "Ttl", "failed", "30s").await;
    assert!(msg.contains("note of failed"), "{msg}");
    let (_, msg) = run_check(&l, "Ttl", "stale", "30s").await;
    assert!(msg.contains("expired"), "{msg}");

    assert_eq!(
        run_check(&l, "Alias", "me", "up").await.0,
        CheckStatus::Healthy
    );
    let (status, msg) = run_check(&l, "Alias", "me", "down").await;
    assert_eq!(status, CheckStatus::Unhealthy);
    assert!(msg.contains("UNHEALTHY"), "{msg}");
    let (status, msg) = run_check(&l, "Alias", "me", "gone").await;
    assert_eq!(status, CheckStatus::Unhealthy);
    assert!(msg.contains("gone"), "{msg}");

    assert!(l.plugins.checker("NoSuchType").is_none());
    assert_eq!(
        l.plugins.checker("grpchealth").map(|c| c.0).as_deref(),
        Some("GrpcHealth")
    );
    drop(listener);
}

#[test]
fn chaos_and_v010_were_built_next_to_the_defaults() {
    for name in [
        "chaos",
        "check_v010",
        "check_v011",
        "check_httpget",
        "namer_regex",
        "discovery_kubernetes",
    ] {
        assert!(Path::new(&wasm(name)).is_file());
    }
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_can_run_as_a_task_and_the_result_is_shareable() {
    fn shareable<T: Send + Sync + 'static>(_: &T) {}
    let dir = tempfile::tempdir().expect("tempdir");
    let config = PluginsConfig::defaults(&NamerVars::default()).expect("defaults");
    let options = LoadOptions {
        cache: CacheSetting::Dir(dir.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let loaded = tokio::spawn(async move { Runtime::load(&config, &options).await })
        .await
        .expect("task")
        .expect("load");
    shareable(&loaded);
    let names: Vec<String> = loaded.describe().into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "check-alias",
            "check-always",
            "check-external",
            "check-grpc",
            "check-httpget",
            "check-tcp",
            "check-ttl",
            "namer-label"
        ],
        "only what is used"
    );
    assert!(loaded.problems().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_sources_and_emitters_round_trip_through_wit() {
    use sidecar_catalog::{Port, PortKind, Status, Timestamp};
    use sidecar_plugin_host::{EmitRequest, Emitted};
    let text = format!(
        r#"
emitters = ["emit-file", "emit-xds"]

[[discovery]]
plugin = "inventory"
interval = "2s"

[[discovery]]
plugin = "broken-inventory"

[plugins.inventory]
wasm = "{disc}"
settings = {{ services = "a1,web,8080,80;b2,dns/udp,5353,53" }}

[plugins.broken-inventory]
wasm = "{disc}"
settings = {{ fail = "backend down" }}

[plugins.emit-file]
wasm = "{emit}"

[plugins.emit-xds]
wasm = "{emit}"
settings = {{ mode = "xds" }}
"#,
        disc = wasm("echo_discovery"),
        emit = wasm("echo_emitter")
    );
    let l = load_with(&text, LoadOptions::default())
        .await
        .expect("load");
    let p = &l.plugins;

    assert_eq!(p.discovery.len(), 2);
    assert_eq!(
        (p.discovery[0].name.as_str(), p.discovery[0].interval),
        ("inventory", Duration::from_secs(2))
    );
    assert_eq!(
        p.discovery[1].interval,
        Duration::from_secs(5),
        "default interval"
    );
    let found = p.discovery[0].source.discover().await.expect("discover");
    assert_eq!(found.len(), 2);
    let web = &found[0];
    assert_eq!(
        (web.service.id.as_str(), web.service.name.as_str()),
        ("a1", "web")
    );
    assert_eq!(web.service.created, Timestamp::from_parts(1_700_000_000, 5));
    assert_eq!(
        web.service.ports,
        vec![Port {
            kind: PortKind::Tcp,
            port: 8080,
            service_port: 80,
            ip: "127.0.0.1".into()
        }]
    );
    assert_eq!(
        web.check
            .as_ref()
            .map(|c| (c.check_type.as_str(), c.args.as_str())),
        Some(("HttpGet", "http://:8080/health"))
    );
    assert_eq!(web.listen_port, Some(8080));
    assert_eq!(found[1].service.ports[0].kind, PortKind::Udp);
    let failed = p.discovery[1].source.discover().await;
    assert_eq!(
        failed.err(),
        Some(PluginError::Failed {
            plugin: "broken-inventory".into(),
            message: "backend down".into()
        })
    );

    let service = |id: &str, name: &str, status: Status| Service {
        id: id.into(),
        name: name.into(),
        status,
        ports: vec![Port {
            kind: PortKind::Tcp,
            port: 31000,
            service_port: 80,
            ip: "10.0.0.1".into(),
        }],
        ..Service::default()
    };
    let req = EmitRequest {
        services: vec![
            service("a1", "web", Status::Alive),
            service("c3", "api", Status::Draining),
        ],
        hostname: "host-1".into(),
        cluster_name: "prod".into(),
        ..EmitRequest::default()
    };
    let file = p.emitters["emit-file"]
        .emit(req.clone())
        .await
        .expect("emit");
    assert_eq!(
        file,
        Emitted::ConfigFile(
            "prod host-1 web a1 ServiceStatus::Alive 31000->80\nprod host-1 api c3 ServiceStatus::Draining 31000->80\n".into()
        )
    );
    match p.emitters["emit-xds"].emit(req).await.expect("emit") {
        Emitted::Xds(resources) => {
            let names: Vec<(&str, &str, &[u8])> = resources
                .iter()
                .map(|r| (r.type_url.as_str(), r.name.as_str(), r.value.as_slice()))
                .collect();
            assert_eq!(
                names,
                [
                    ("test.v1.Service", "web", &b"a1"[..]),
                    ("test.v1.Service", "api", &b"c3"[..])
                ]
            );
        }
        other => panic!("expected xDS resources, got {other:?}"),
    }
    let kinds: Vec<(String, String)> = p
        .describe()
        .into_iter()
        .map(|i| (i.name, i.kind.to_string()))
        .filter(|(n, _)| n.starts_with("emit") || n.contains("inventory"))
        .collect();
    assert_eq!(kinds.len(), 4);
    assert!(kinds.iter().all(|(n, k)| if n.starts_with("emit") {
        k == "proxy-emitter"
    } else {
        k == "discovery-source"
    }));
}
