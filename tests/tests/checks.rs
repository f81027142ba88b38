//! The check types `Tcp`, `GrpcHealth`, `Ttl` and `Alias`, and unknown check types, end
//! to end: the built daemon checks static.json services and their `Status` in
//! `/api/services.json` and `/api/checks.json` follows what happens to the target (a
//! listener closed, a real tonic-health server turning NOT_SERVING, TTL reports that
//! stop, the aliased service failing). `sidecar plugins check` runs the same plugins.

mod daemon_common;

use daemon_common::{Agent, WAIT, request, request_with};
use serde_json::{Value, json};
use sidecar_e2e::{sidecar_bin, wait_for, workspace_root};
use std::net::TcpListener;
use std::process::Command;

const ALIVE: u64 = 0;
const UNHEALTHY: u64 = 2;
const UNKNOWN: u64 = 3;
const DRAINING: u64 = 4;

/// A static.json target with a fixed ID and one tcp port.
fn target(id: &str, name: &str, port: u16, check_type: &str, args: &str) -> Value {
    json!({
        "Service": {
            "ID": id,
            "Name": name,
            "Ports": [{"Type": "tcp", "Port": port, "ServicePort": 10000 + (port % 20000)}],
        },
        "Check": {"Type": check_type, "Args": args},
    })
}

fn start(targets: &[Value]) -> Agent {
    Agent::start(
        "node-a",
        &Value::Array(targets.to_vec()).to_string(),
        &[("SIDECAR_HEALTH_INTERVAL", "300ms")],
    )
}

fn status_of(agent: &Agent, id: &str) -> Option<u64> {
    agent
        .instances()
        .into_iter()
        .find(|s| s["ID"] == id)
        .and_then(|s| s["Status"].as_u64())
}

/// Waits until the instance `id` has `status` in /api/services.json; returns its
/// report from /api/checks.json.
fn wait_status(agent: &Agent, id: &str, status: u64) -> Value {
    wait_for(&format!("{id} with status {status}"), WAIT, || {
        (status_of(agent, id) == Some(status)).then_some(())
    });
    report(agent, id)
}

fn report(agent: &Agent, id: &str) -> Value {
    let doc = agent.get("/api/checks.json").json();
    doc["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|r| r["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no check report for {id}: {doc}"))
}

/// Waits until `id`'s report message contains `text`; returns the report.
fn wait_message(agent: &Agent, id: &str, text: &str) -> Value {
    wait_for(&format!("{id}'s check message with {text:?}"), WAIT, || {
        let r = report(agent, id);
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains(text))
            .then_some(r)
    })
}

/// `sidecar plugins check TYPE ARGS`: (exit code, stdout + stderr).
fn cli_check(check_type: &str, args: &str) -> (i32, String) {
    let o = Command::new(sidecar_bin())
        .args(["plugins", "check", check_type, args])
        .env(
            "SIDECAR_CACHE_DIR",
            workspace_root().join("target/e2e-plugin-cache"),
        )
        .env_remove("SIDECAR_PLUGINS_FILE")
        .env_remove("SIDECAR_ADVERTISE_IP")
        .output()
        .expect("run sidecar plugins check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

#[test]
fn tcp_checks_and_aliases_follow_their_targets() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sp = 10000 + (port % 20000);
    let agent = start(&[
        target(
            "db-1",
            "db",
            port,
            "Tcp",
            &format!("{{{{ host }}}}:{{{{ tcp {sp} }}}}"),
        ),
        target("db-1-proxy", "db-sidecar-proxy", port, "Alias", "db-1"),
    ]);
    let r = wait_status(&agent, "db-1", ALIVE);
    assert_eq!(r["type"], "Tcp");
    assert_eq!(
        r["args"],
        format!("127.0.0.1:{port}"),
        "templated like HttpGet"
    );
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("connected")),
        "{r}"
    );
    wait_status(&agent, "db-1-proxy", ALIVE);
    assert_eq!(cli_check("Tcp", &format!("127.0.0.1:{port}")).0, 0);

    drop(listener);
    let r = wait_status(&agent, "db-1", UNHEALTHY);
    assert_eq!(r["result"], "unhealthy");
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("refused")),
        "{r}"
    );
    wait_status(&agent, "db-1-proxy", UNHEALTHY);
    wait_message(&agent, "db-1-proxy", "db-1 is UNHEALTHY");
    let (code, out) = cli_check("Tcp", &format!("127.0.0.1:{port}"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("unhealthy") && out.contains("refused"),
        "{out}"
    );

    // The listener back (std sets SO_REUSEADDR): both recover.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("rebind");
    wait_status(&agent, "db-1", ALIVE);
    wait_status(&agent, "db-1-proxy", ALIVE);

    // Draining the parent takes the alias out of rotation too.
    let r = request("POST", &agent.url("/api/services/db-1/drain"));
    assert_eq!(r.status, 202, "{}", r.body);
    wait_status(&agent, "db-1", DRAINING);
    wait_message(&agent, "db-1-proxy", "db-1 is DRAINING");
    wait_status(&agent, "db-1-proxy", UNHEALTHY);
    drop(listener);
}

#[test]
fn grpc_health_follows_a_tonic_health_server() {
    use tonic_health::ServingStatus;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut reporter, service) = tonic_health::server::health_reporter();
    rt.block_on(async {
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("api.v1", ServingStatus::Serving)
            .await;
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let agent = start(&[
        target(
            "grpc-all",
            "grpc",
            port,
            "GrpcHealth",
            &format!("127.0.0.1:{port}"),
        ),
        target(
            "grpc-api",
            "grpc-api",
            port,
            "GrpcHealth",
            &format!("127.0.0.1:{port}/api.v1"),
        ),
    ]);
    let r = wait_status(&agent, "grpc-all", ALIVE);
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("SERVING")),
        "{r}"
    );
    wait_status(&agent, "grpc-api", ALIVE);
    assert_eq!(
        cli_check("GrpcHealth", &format!("127.0.0.1:{port}/api.v1")).0,
        0
    );

    rt.block_on(reporter.set_service_status("api.v1", ServingStatus::NotServing));
    let r = wait_status(&agent, "grpc-api", UNHEALTHY);
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("NOT_SERVING")),
        "{r}"
    );
    assert_eq!(
        status_of(&agent, "grpc-all"),
        Some(ALIVE),
        "the server as a whole serves"
    );
    let (code, out) = cli_check("GrpcHealth", &format!("127.0.0.1:{port}/api.v1"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT_SERVING"), "{out}");

    rt.block_on(reporter.set_service_status("api.v1", ServingStatus::Serving));
    wait_status(&agent, "grpc-api", ALIVE);

    // The server gone: unreachable is unhealthy.
    rt.shutdown_background();
    let r = wait_status(&agent, "grpc-all", UNHEALTHY);
    assert_eq!(r["result"], "unhealthy", "{r}");
    wait_status(&agent, "grpc-api", UNHEALTHY);
    assert_eq!(cli_check("GrpcHealth", &format!("127.0.0.1:{port}")).0, 1);
}

#[test]
fn ttl_reports_keep_a_service_alive_until_they_stop() {
    let agent = start(&[target("job-1", "worker", 9, "Ttl", "3s")]);
    // No report yet: unhealthy, saying how to report.
    let r = wait_status(&agent, "job-1", UNHEALTHY);
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("/api/services/job-1/ttl/pass")),
        "{r}"
    );
    let put = |path: &str| request("PUT", &agent.url(path));
    let r = put("/api/services/job-1/ttl/pass");
    assert_eq!(r.status, 200, "{}", r.body);
    wait_status(&agent, "job-1", ALIVE);
    // No further report: the TTL runs out.
    wait_message(&agent, "job-1", "TTL expired");
    wait_status(&agent, "job-1", UNHEALTHY);

    assert_eq!(
        put("/api/services/job-1/ttl/pass?note=back%20again").status,
        200
    );
    wait_status(&agent, "job-1", ALIVE);
    wait_message(&agent, "job-1", "pass: back again");

    let r = request_with(
        "PUT",
        &agent.url("/api/services/job-1/ttl/fail"),
        &[("Content-Type", "application/json")],
        r#"{"note": "database unreachable"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    wait_status(&agent, "job-1", UNHEALTHY);
    wait_message(&agent, "job-1", "fail: database unreachable");

    // Bad requests, unknown IDs, and a write from another origin.
    assert_eq!(put("/api/services/job-1/ttl/maybe").status, 400);
    assert_eq!(put("/api/services/nope/ttl/pass").status, 404);
    let r = request_with(
        "PUT",
        &agent.url("/api/services/job-1/ttl/pass"),
        &[("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn unknown_check_types_are_errors_and_the_service_stays_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let agent = start(&[
        target("odd-1", "odd", port, "Bogus", &addr),
        // Known names match ignoring case.
        target("fine-1", "fine", port, "tcp", &addr),
    ]);
    wait_status(&agent, "fine-1", ALIVE);
    let r = wait_message(&agent, "odd-1", "unknown check type \"Bogus\"");
    assert_eq!(r["result"], "error", "{r}");
    assert_eq!(r["status"], "Unknown", "{r}");
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("\"odd\"")),
        "{r}"
    );
    assert_eq!(status_of(&agent, "odd-1"), Some(UNKNOWN));
    let line = "sidecar_check_unknown_type{id=\"odd-1\",service=\"odd\",type=\"Bogus\"} 1";
    let metrics = agent.get("/metrics").body;
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
    let log = agent.log();
    assert!(
        log.lines().any(|l| l.contains("unknown health check type")
            && l.contains("Bogus")
            && l.contains("odd")),
        "{log}"
    );
    // Still UNKNOWN a check round later: never ALIVE, never a failing HttpGet.
    let first = r["time"].clone();
    wait_for("another check round", WAIT, || {
        (report(&agent, "odd-1")["time"] != first).then_some(())
    });
    assert_eq!(status_of(&agent, "odd-1"), Some(UNKNOWN));

    // Fixed in the file: checked, and the metric series is gone.
    agent.write_static(
        &Value::Array(vec![
            target("odd-1", "odd", port, "Tcp", &addr),
            target("fine-1", "fine", port, "tcp", &addr),
        ])
        .to_string(),
    );
    wait_status(&agent, "odd-1", ALIVE);
    wait_for("the unknown-type series to go", WAIT, || {
        (!agent.get("/metrics").body.contains("type=\"Bogus\"")).then_some(())
    });
    let (code, out) = cli_check("Bogus", "x");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown check type \"Bogus\""), "{out}");
    drop(listener);
}
