//! End-to-end: the built `sidecar` binary's `plugins` subcommands with the embedded
//! plugins, plugins.toml files and the Python example plugin, against HTTP servers on
//! 127.0.0.1 (no other address is ever contacted).

use sidecar_e2e::{sidecar_bin, workspace_root};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Compiled plugins are cached across test processes (the first run compiles them).
fn cache_dir() -> PathBuf {
    workspace_root().join("target").join("e2e-plugin-cache")
}

fn sidecar(args: &[&str]) -> Output {
    sidecar_env(args, &[])
}

fn sidecar_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(sidecar_bin());
    cmd.args(args)
        .env("SIDECAR_CACHE_DIR", cache_dir())
        .env_remove("SIDECAR_PLUGINS_FILE");
    for var in [
        "SERVICES_NAMER",
        "SERVICES_NAME_LABEL",
        "SERVICES_NAME_MATCH",
        "SIDECAR_ADVERTISE_IP",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("run sidecar {args:?}: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving fixed routes, one thread per connection.
struct Server {
    port: u16,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || serve(conn));
            }
        });
        Server { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let (status, extra, body) = match path.as_str() {
        "/ok" => ("200 OK", String::new(), "fine".to_string()),
        "/redirect" => ("302 Found", "Location: /ok\r\n".to_string(), String::new()),
        "/loop" => (
            "302 Found",
            "Location: /loop\r\n".to_string(),
            String::new(),
        ),
        "/fail" => (
            "500 Internal Server Error",
            String::new(),
            "broken".to_string(),
        ),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(4));
            ("200 OK", String::new(), "late".to_string())
        }
        "/status-ok" => (
            "200 OK",
            String::new(),
            r#"{"status": "ok", "version": "1.2"}"#.to_string(),
        ),
        "/status-bad" => (
            "200 OK",
            String::new(),
            r#"{"status": "degraded"}"#.to_string(),
        ),
        _ => ("404 Not Found", String::new(), String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// A port on 127.0.0.1 that refuses connections.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn check(check_type: &str, args: &str) -> (i32, String, String) {
    let o = sidecar(&["plugins", "check", check_type, args]);
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

// ---- namers ---------------------------------------------------------------------

#[test]
fn regex_namer_takes_capture_group_one_or_falls_back_to_the_image() {
    let name = |pattern: &str| {
        let env = [
            ("SERVICES_NAMER", "regex"),
            ("SERVICES_NAME_MATCH", pattern),
        ];
        let args = [
            "plugins",
            "name",
            "--container-name",
            "/awesome-svc-1231b1b12323",
            "--image",
            "gonitro/awesome-svc:0.1.34",
        ];
        let o = sidecar_env(&args, &env);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(name("^/(.+)(-[0-9a-z]{7,14})$"), "awesome-svc");
    assert_eq!(name("ASDF"), "gonitro/awesome-svc:0.1.34");
    assert_eq!(
        name("^/awesome"),
        "gonitro/awesome-svc:0.1.34",
        "no capture group: image, not a crash"
    );
}

#[test]
fn an_invalid_regex_is_an_error() {
    let env = [
        ("SERVICES_NAMER", "regex"),
        ("SERVICES_NAME_MATCH", "(unclosed"),
    ];
    let o = sidecar_env(
        &["plugins", "name", "--container-name", "x", "--image", "img"],
        &env,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid `pattern`"), "{}", stderr(&o));
}

#[test]
fn label_namer_with_and_without_the_label() {
    let with = sidecar(&[
        "plugins",
        "name",
        "--label",
        "ServiceName=web",
        "--container-name",
        "c1",
        "--image",
        "img:1",
    ]);
    assert_eq!(stdout(&with), "web");
    let without = sidecar(&[
        "plugins",
        "name",
        "--label",
        "Other=x",
        "--container-name",
        "c1",
        "--image",
        "img:1",
    ]);
    assert_eq!(stdout(&without), "img:1");
    let env = [("SERVICES_NAME_LABEL", "app")];
    let custom = sidecar_env(
        &[
            "plugins",
            "name",
            "--label",
            "app=api",
            "--container-name",
            "c1",
            "--image",
            "i",
        ],
        &env,
    );
    assert_eq!(stdout(&custom), "api");
}

#[test]
fn namer_chosen_and_configured_in_plugins_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml =
        "namer = \"namer-regex\"\n\n[plugins.namer-regex.settings]\npattern = '^/([a-z]+)-'\n";
    let file = write(dir.path(), "plugins.toml", toml);
    let o = sidecar(&[
        "plugins",
        "name",
        "--plugins",
        file.to_str().expect("utf8"),
        "--container-name",
        "/api-7",
        "--image",
        "i",
    ]);
    assert_eq!(stdout(&o), "api", "{}", stderr(&o));
}

// ---- HttpGet ---------------------------------------------------------------------

#[test]
fn httpget_2xx_is_healthy_and_redirects_are_followed() {
    let server = Server::start();
    assert_eq!(
        check("HttpGet", &server.url("/ok")),
        (0, "healthy: HTTP 200".to_string(), String::new())
    );
    let (code, out, _) = check("HttpGet", &server.url("/redirect"));
    assert_eq!((code, out.as_str()), (0, "healthy: HTTP 200"));
}

#[test]
fn httpget_5xx_and_endless_redirects_are_unhealthy() {
    let server = Server::start();
    let (code, out, _) = check("HttpGet", &server.url("/fail"));
    assert_eq!(code, 1);
    assert!(out.starts_with("unhealthy: HTTP 500"), "{out}");
    let (code, out, _) = check("HttpGet", &server.url("/loop"));
    assert_eq!(code, 1);
    assert!(
        out.contains("HTTP 302") && out.contains("redirect"),
        "{out}"
    );
}

#[test]
fn httpget_connection_refused_is_unhealthy() {
    let (code, out, _) = check(
        "HttpGet",
        &format!("http://127.0.0.1:{}/health", closed_port()),
    );
    assert_eq!(code, 1);
    assert!(
        out.starts_with("unhealthy:") && out.contains("Connection refused"),
        "{out}"
    );
}

#[test]
fn httpget_empty_host_means_loopback() {
    let server = Server::start();
    let (code, out, _) = check("HttpGet", &format!("http://:{}/ok", server.port));
    assert_eq!((code, out.as_str()), (0, "healthy: HTTP 200"));
}

#[test]
fn httpget_slower_than_the_timeout_is_unhealthy() {
    let server = Server::start();
    // Compile (or load) the plugins first, so only the check is timed.
    assert_eq!(check("AlwaysSuccessful", "").0, 0);
    let started = Instant::now();
    let (code, out, _) = check("HttpGet", &server.url("/slow"));
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no answer within 3000 ms"), "{out}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}

#[test]
fn httpget_outside_the_grant_is_denied_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "plugins.toml",
        "[plugins.check-httpget]\ngrants = { http = [\"localhost:1\"] }\n",
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!(
        "http://127.0.0.1:{}/",
        listener.local_addr().expect("addr").port()
    );
    let o = sidecar(&[
        "plugins",
        "check",
        "--plugins",
        file.to_str().expect("utf8"),
        "HttpGet",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is not in the http grant"),
        "{}",
        stderr(&o)
    );
    assert!(listener.accept().is_err(), "no connection was attempted");
}

// ---- External / AlwaysSuccessful / unknown types --------------------------------

#[test]
fn external_exit_status_decides() {
    assert_eq!(check("External", "/bin/true").0, 0);
    let (code, out, _) = check("External", "/bin/false");
    assert_eq!(
        (code, out.as_str()),
        (1, "unhealthy: /bin/false: exit status 1")
    );
    let (code, out, _) = check("External", "sh -c 'echo disk full >&2; exit 3'");
    assert_eq!(
        (code, out.as_str()),
        (1, "unhealthy: sh: exit status 3: disk full")
    );
}

#[test]
fn external_without_the_exec_grant_is_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "plugins.toml",
        "[plugins.check-external]\ngrants = { exec = false }\n",
    );
    let o = sidecar(&[
        "plugins",
        "check",
        "--plugins",
        file.to_str().expect("utf8"),
        "External",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("denied") && stderr(&o).contains("exec"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn always_successful_and_unknown_types() {
    assert_eq!(
        check("AlwaysSuccessful", ""),
        (0, "healthy: always successful".to_string(), String::new())
    );
    // Sidecar ran any unknown type as HttpGet; an unknown type is an error here.
    let (code, out, err) = check("Nonsense", &format!("http://127.0.0.1:{}/", closed_port()));
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("unknown check type \"Nonsense\"") && err.contains("HttpGet"),
        "{err}"
    );
    // Known names match ignoring case.
    assert_eq!(check("alwayssuccessful", "").0, 0);
}

// ---- plugins.toml and list -------------------------------------------------------

#[test]
fn list_shows_the_embedded_defaults() {
    let o = sidecar(&["plugins", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (name, kind, uses) in [
        ("namer-label", "namer", "namer"),
        ("namer-regex", "namer", "-"),
        ("check-httpget", "health-check", "check HttpGet"),
        ("check-external", "health-check", "check External"),
        ("check-always", "health-check", "check AlwaysSuccessful"),
        ("check-tcp", "health-check", "check Tcp"),
        ("check-grpc", "health-check", "check GrpcHealth"),
        ("check-ttl", "health-check", "check Ttl"),
        ("check-alias", "health-check", "check Alias"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(
            line.contains(kind)
                && line.contains("0.1.3")
                && line.contains("embedded")
                && line.ends_with(uses),
            "{line}"
        );
    }
    assert!(
        out.contains("exec"),
        "check-external's grant is shown: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("check-tcp ") && l.contains("net=127.0.0.1:*")),
        "check-tcp's net grant is shown: {out}"
    );
}

/// Every default plugin comes precompiled: `plugins list` (which loads them all) with an
/// empty cache compiles nothing and writes nothing. A plugins.toml that raises a memory
/// limit changes the engine's compiled-code settings: then the defaults are compiled
/// into the cache, and the log says why.
#[test]
fn default_plugins_are_precompiled_unless_a_memory_limit_changes_the_engine() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_str().expect("utf-8 path");
    let entries = || -> usize {
        std::fs::read_dir(cache.path().join("plugins"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let o = sidecar_env(&["plugins", "list"], &[("SIDECAR_CACHE_DIR", cache_dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(" precompiled, 0 from the compile cache, 0 compiled"),
        "{err}"
    );
    assert!(!err.contains(" 0 precompiled"), "{err}");
    assert_eq!(entries(), 0, "nothing compiled into the cache");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "plugins.toml",
        "[plugins.check-always]\nlimits = { memory_mb = 128 }\n",
    );
    let o = sidecar_env(
        &[
            "plugins",
            "check",
            "--plugins",
            file.to_str().expect("utf-8 path"),
            "AlwaysSuccessful",
            "",
        ],
        &[("SIDECAR_CACHE_DIR", cache_dir), ("RUST_LOG", "info")],
    );
    assert_eq!(stdout(&o), "healthy: always successful", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("largest memory_mb in use is not the default"),
        "{}",
        stderr(&o)
    );
    assert!(entries() > 0, "compiled into the cache");
}

#[test]
fn plugins_toml_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[checks]\nHttpGet = \"check-httpget\"\nFoo = \"nope\"\n",
            3,
            "unknown plugin `nope`",
        ),
        (
            "namer = \"namer-label\"\n\nfrobnicate = true\n",
            3,
            "unknown field `frobnicate`",
        ),
        (
            "[plugins.mine]\nwasm = \"missing.wasm\"\n",
            2,
            "wasm file not found",
        ),
        (
            "[plugins.check-httpget]\nkind = \"checker\"\n",
            2,
            "unknown kind `checker`",
        ),
        (
            "namer = \"check-always\"\n",
            1,
            "which is a health-check, not a namer",
        ),
        ("namer = [\n", 0, ""), // a syntax error: some line of the file
    ];
    for (i, (text, line, message)) in cases.into_iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.toml"), text);
        let o = sidecar(&["plugins", "list", "--plugins", file.to_str().expect("utf8")]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        let err = stderr(&o);
        let at = if line == 0 {
            format!("bad{i}.toml:")
        } else {
            format!("bad{i}.toml:{line}: ")
        };
        assert!(
            err.contains(&at) && err.contains(message),
            "{text:?} -> {err}"
        );
    }
}

// ---- Python plugin ---------------------------------------------------------------

#[test]
fn python_plugin_runs_from_a_path_in_plugins_toml() {
    let wasm = workspace_root().join("target/examples/python_check.wasm");
    assert!(
        wasm.exists(),
        "{} missing: run scripts/setup.sh && scripts/build-examples.sh",
        wasm.display()
    );
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[checks]\nJsonStatus = \"json-status\"\n\n[plugins.json-status]\nwasm = \"{}\"\nkind = \"health-check\"\n\
         grants = {{ http = [\"127.0.0.1:*\"] }}\n",
        wasm.display()
    );
    let file = write(dir.path(), "plugins.toml", &toml);
    let run = |path: &str| {
        let o = sidecar(&[
            "plugins",
            "check",
            "--plugins",
            file.to_str().expect("utf8"),
            "JsonStatus",
            &server.url(path),
        ]);
        (o.status.code(), stdout(&o), stderr(&o))
    };
    let (code, out, err) = run("/status-ok");
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "healthy: status=ok"),
        "{err}"
    );
    let (code, out, _) = run("/status-bad");
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "unhealthy: status is 'degraded', want 'ok'")
    );
    let (code, out, _) = run("/fail");
    assert_eq!(code, Some(1));
    assert!(out.contains("HTTP 500"), "{out}");

    let listed = sidecar(&["plugins", "list", "--plugins", file.to_str().expect("utf8")]);
    let line = stdout(&listed)
        .lines()
        .find(|l| l.starts_with("json-status "))
        .map(String::from)
        .unwrap_or_default();
    assert!(
        line.contains("python_check.wasm") && line.contains("http=127.0.0.1:*"),
        "{line}"
    );
}

// ---- guest output and crashes ------------------------------------------------------

#[test]
fn guest_output_is_logged_with_the_plugin_name_and_a_panic_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chaos = sidecar_e2e::plugin_wasm("chaos");
    let toml = format!(
        "[checks]\nChaos = \"chaos\"\n\n[plugins.chaos]\nwasm = \"{}\"\n",
        chaos.display()
    );
    let file = write(dir.path(), "plugins.toml", &toml);
    let file = file.to_str().expect("utf8");

    let o = sidecar_env(
        &["plugins", "check", "--plugins", file, "Chaos", "ok"],
        &[("RUST_LOG", "info")],
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    for line in ["chaos: stdout line", "chaos: stderr line"] {
        let logged = err
            .lines()
            .find(|l| l.contains(line))
            .unwrap_or_else(|| panic!("{line} not logged: {err}"));
        assert!(
            logged.contains("plugin") && logged.contains("chaos"),
            "{logged}"
        );
    }

    // A flood of log lines from one call is cut at 100, with one line saying so.
    let o = sidecar_env(
        &["plugins", "check", "--plugins", file, "Chaos", "log 150"],
        &[("RUST_LOG", "info")],
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    let kept = err.lines().filter(|l| l.contains("chaos: ")).count();
    assert_eq!(kept, 100, "{err}");
    assert!(
        err.contains("200 more log lines from this call dropped"),
        "{err}"
    );

    let o = sidecar(&["plugins", "check", "--plugins", file, "Chaos", "trap"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("plugin chaos crashed") && err.contains("chaos: deliberate panic"),
        "{err}"
    );
}
