//! Operating the daemon: SIGHUP reloads (static.json, plugins.toml, the log level),
//! undrain and node maintenance (kept across a restart), check results in
//! `/api/checks.json`, the API token for reads and HTTPS.

mod daemon_common;

use daemon_common::{Agent, TestServer, WAIT, agent_command, request, request_with};
use sidecar_e2e::{KillOnDrop, free_port, wait_for};
use std::process::{Command, Stdio};
use std::time::Duration;

fn svc(name: &str, port: u16) -> String {
    format!(
        r#"{{"Service":{{"ID":"{name}-1","Name":"{name}","Image":"{name}:1","Ports":[{{"Type":"tcp","Port":{port},"ServicePort":{port}}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}"#
    )
}

fn hup(agent: &Agent) {
    let ok = Command::new("kill")
        .args(["-HUP", &agent.proc.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -HUP");
}

fn names(agent: &Agent) -> Vec<String> {
    let mut v: Vec<String> = agent
        .instances()
        .iter()
        .filter(|s| s["Status"] == 0)
        .filter_map(|s| s["Name"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

#[test]
fn sighup_rereads_static_json_even_when_size_and_time_are_unchanged() {
    let mut a = Agent::start("ops-hup", &format!("[{}]", svc("alpha", 9001)), &[]);
    a.wait_status("alpha", 0);
    // Same length, same modification time: the 1 s poll cannot see this change.
    let path = a.static_file();
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&path, format!("[{}]", svc("bravo", 9001))).expect("rewrite");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(mtime).expect("restore mtime");
    drop(f);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(names(&a), vec!["alpha"], "no reload without the signal");
    hup(&a);
    wait_for("bravo after SIGHUP", WAIT, || {
        (names(&a) == vec!["bravo"]).then_some(())
    });
    assert!(a.proc.is_running(), "SIGHUP does not stop the daemon");
    assert!(a.log().contains("SIGHUP: reloading"));
}

#[test]
fn sighup_with_a_broken_plugins_toml_keeps_the_running_plugins() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("static.json"),
        format!("[{}]", svc("steady", 9002)),
    )
    .expect("static");
    let plugins = dir.path().join("plugins.toml");
    std::fs::write(&plugins, "").expect("plugins.toml");
    let conf = dir.path().join("sidecar.env");
    std::fs::write(&conf, "SIDECAR_LOGGING_LEVEL=info\n").expect("env file");
    let plugins_s = plugins.display().to_string();
    let conf_s = conf.display().to_string();
    let mut a = Agent::start_in(
        dir,
        "ops-plugins",
        &[
            ("SIDECAR_PLUGINS_FILE", plugins_s.as_str()),
            ("SIDECAR_CONFIG_FILE", conf_s.as_str()),
            ("RUST_LOG", ""),
        ],
    );
    a.wait_status("steady", 0);

    // A plugins.toml that does not parse: refused, everything keeps running.
    std::fs::write(&plugins, "[[plugins]\nthis is not toml").expect("break it");
    hup(&a);
    wait_for("the refusal in the log", WAIT, || {
        a.log().contains("reload refused").then_some(())
    });
    assert!(a.proc.is_running());
    a.wait_status("steady", 0);

    // A plugin that does not load (not a component): refused, naming it.
    let ghost = plugins.with_file_name("ghost.wasm");
    std::fs::write(&ghost, b"\0asm garbage").expect("ghost.wasm");
    std::fs::write(
        &plugins,
        "[checks]\nGhost = \"ghost\"\n[plugins.ghost]\nwasm = \"ghost.wasm\"\n",
    )
    .expect("bad plugin");
    hup(&a);
    wait_for("the plugin refusal in the log", WAIT, || {
        a.log()
            .contains("plugins.toml reload refused, the running plugins stay")
            .then_some(())
    });
    assert!(a.log().contains("ghost"), "the failing plugin is named");

    // The log level follows the environment file.
    std::fs::write(&plugins, "").expect("good again");
    std::fs::write(&conf, "SIDECAR_LOGGING_LEVEL=debug\n").expect("env file");
    hup(&a);
    wait_for("the log level change", WAIT, || {
        a.log().contains("log level reloaded").then_some(())
    });
    wait_for("plugins reloaded", WAIT, || {
        a.log().contains("plugins reloaded").then_some(())
    });
    a.wait_status("steady", 0);
    assert!(a.proc.is_running());
}

#[test]
fn undrain_and_maintenance_and_maintenance_survives_a_restart() {
    let state = tempfile::tempdir().expect("state dir");
    let state_s = state.path().display().to_string();
    let env = [("SIDECAR_STATE_DIR", state_s.as_str())];
    let statics = format!("[{},{}]", svc("web", 9101), svc("db", 9102));
    let a = Agent::start("ops-maint", &statics, &env);
    a.wait_status("web", 0);
    a.wait_status("db", 0);

    let r = request("POST", &a.url("/api/services/web-1/drain"));
    assert_eq!(r.status, 202);
    a.wait_status("web", 4);
    let r = request("POST", &a.url("/api/services/web-1/undrain"));
    assert_eq!(r.status, 202, "{}", r.body);
    a.wait_status("web", 0);
    let r = request("POST", &a.url("/api/services/nope/undrain"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "error");

    let r = request_with(
        "POST",
        &a.url("/api/maintenance"),
        &[("content-type", "application/json")],
        r#"{"enabled":true,"reason":"kernel upgrade"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["reason"], "kernel upgrade");
    a.wait_status("web", 4);
    a.wait_status("db", 4);
    let doc = a.get("/api/maintenance").json();
    assert_eq!(doc["enabled"], true);

    // Restart with the same state directory: still in maintenance, never ALIVE.
    drop(a);
    let b = Agent::start("ops-maint", &statics, &env);
    b.wait_status("web", 4);
    b.wait_status("db", 4);
    assert!(
        !b.instances().iter().any(|s| s["Status"] == 0),
        "a node in maintenance never announces ALIVE after a restart"
    );
    let r = request_with(
        "POST",
        &b.url("/api/maintenance"),
        &[("content-type", "application/json")],
        r#"{"enabled":false}"#,
    );
    assert_eq!(r.status, 200);
    b.wait_status("web", 0);
    b.wait_status("db", 0);

    let r = request_with(
        "POST",
        &b.url("/api/maintenance"),
        &[("content-type", "application/json")],
        "{not json",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["status"], "error");
}

#[test]
fn checks_json_reports_each_checks_last_result_and_why() {
    let up = TestServer::start(200);
    let closed = free_port("127.0.0.1");
    let statics = format!(
        r#"[{{"Service":{{"ID":"ok-1","Name":"ok","Ports":[{{"Type":"tcp","Port":{p},"ServicePort":9201}}]}},"Check":{{"Type":"HttpGet","Args":"http://127.0.0.1:{p}/health"}}}},
            {{"Service":{{"ID":"down-1","Name":"down","Ports":[{{"Type":"tcp","Port":{closed},"ServicePort":9202}}]}},"Check":{{"Type":"HttpGet","Args":"http://127.0.0.1:{closed}/health"}}}}]"#,
        p = up.port
    );
    let a = Agent::start("ops-checks", &statics, &[]);
    a.wait_status("ok", 0);
    a.wait_status("down", 2);
    let doc = a.get("/api/checks.json").json();
    let checks = doc["checks"].as_array().expect("checks");
    let down = checks.iter().find(|c| c["id"] == "down-1").expect("down");
    assert_eq!(down["type"], "HttpGet");
    assert_eq!(down["status"], "Unhealthy");
    assert!(
        matches!(down["result"].as_str(), Some("unhealthy" | "error")),
        "{down}"
    );
    assert!(
        down["message"]
            .as_str()
            .is_some_and(|m| m.to_lowercase().contains("refused")),
        "the reason reaches the API: {down}"
    );
    assert!(down["time"].is_string() && down["duration_ms"].is_number());
    let ok = checks.iter().find(|c| c["id"] == "ok-1").expect("ok");
    assert_eq!(ok["result"], "healthy");
    assert_eq!(ok["status"], "Alive");
    // Sidecar's Service JSON keeps its nine keys.
    let svc = a.wait_status("down", 2);
    assert_eq!(svc.as_object().map(|m| m.len()), Some(9));
}

#[test]
fn reads_need_the_token_when_asked_and_writes_always_do_with_one() {
    let a = Agent::start(
        "ops-token",
        &format!("[{}]", svc("secret", 9301)),
        &[
            ("SIDECAR_API_TOKEN", "s3cret"),
            ("SIDECAR_API_AUTH_READS", "true"),
        ],
    );
    let auth = [("authorization", "Bearer s3cret")];
    let r = request("GET", &a.url("/api/services.json"));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        serde_json::json!({"message":"a valid API token is required","status":"error"})
    );
    wait_for("secret ALIVE", WAIT, || {
        let r = request_with("GET", &a.url("/api/services.json"), &auth, "");
        (r.status == 200 && r.body.contains("\"secret\"") && r.body.contains("\"Status\": 0"))
            .then_some(())
    });
    let cookie = [("cookie", "sidecar_token=s3cret")];
    assert_eq!(
        request_with("GET", &a.url("/api/state.json"), &cookie, "").status,
        200
    );
    assert_eq!(
        request("GET", &a.url("/health")).status,
        200,
        "probes stay open"
    );
    let r = request("POST", &a.url("/api/services/secret-1/drain"));
    assert_eq!(r.status, 401, "writes need the token, even from loopback");
    let r = request_with("POST", &a.url("/api/services/secret-1/drain"), &auth, "");
    assert_eq!(r.status, 202);
}

#[test]
fn the_api_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: openssl could not make a certificate");
        return;
    }
    std::fs::write(
        dir.path().join("static.json"),
        format!("[{}]", svc("tls", 9401)),
    )
    .expect("static");
    let http_port = free_port("127.0.0.1");
    let mut cmd = agent_command(dir.path(), "ops-tls", http_port, free_port("127.0.0.1"));
    cmd.env("SIDECAR_API_TLS_CERT", &cert)
        .env("SIDECAR_API_TLS_KEY", &key)
        .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("log"));
    let _agent = KillOnDrop::spawn(&mut cmd);
    let url = format!("https://127.0.0.1:{http_port}/api/services.json");
    let curl = |extra: &[&str], url: &str| {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(extra)
            .arg(url)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let cacert = cert.display().to_string();
    wait_for("the HTTPS API", WAIT * 4, || {
        (curl(&["--cacert", &cacert], &url) == "200").then_some(())
    });
    let plain = format!("http://127.0.0.1:{http_port}/api/services.json");
    assert_ne!(curl(&[], &plain), "200", "no plain HTTP on the TLS port");
    assert_eq!(
        curl(&[], &url),
        "000",
        "an untrusted certificate fails the handshake"
    );
}
