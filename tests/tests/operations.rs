//! Operating the daemon as an operator would: the client commands against a running
//! agent (address and token from the agent's own settings), `plugins check`/`list` as
//! the agent sees plugins, the advertise-IP choice on a host with a Docker bridge (in a
//! network namespace of the test's own), systemd readiness and watchdog through a
//! notify socket the test listens on, and the generated help, reference, completions
//! and man page.

mod daemon_common;

use daemon_common::{Agent, WAIT};
use sidecar_e2e::{free_port, sidecar_bin, workspace_root};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `sidecar ARGS` with only `env` (and PATH) in its environment.
fn sidecar(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(sidecar_bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "SIDECAR_CACHE_DIR",
            workspace_root().join("target/e2e-plugin-cache"),
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run sidecar");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn web(port: u16) -> String {
    format!(
        r#"[{{"Service":{{"Name":"web","Image":"example/web:1.2","Ports":[{{"Type":"tcp","Port":{port},"ServicePort":10100}}],"ProxyMode":"http"}},
             "Check":{{"Type":"AlwaysSuccessful","Args":""}}}}]"#
    )
}

/// The agent's port, as `SIDECAR_HTTP_ADDR` would give it on the agent's host.
fn port_of(agent: &Agent) -> u16 {
    agent
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[test]
fn members_and_services_follow_sidecar_http_addr_and_print_aligned_tables() {
    let agent = Agent::start("node-ops", &web(free_port("127.0.0.1")), &[]);
    agent.wait_status("web", 0);
    let port = port_of(&agent);
    // The agent's own setting, with the unspecified address an agent listens on.
    let addr = format!("0.0.0.0:{port}");
    let r = sidecar(&["members"], &[("SIDECAR_HTTP_ADDR", &addr)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "cluster default");
    assert!(lines[1].starts_with("NAME"), "{}", r.stdout);
    assert!(lines[2].starts_with("node-ops* "), "{}", r.stdout);
    for col in ["ADDRESS", "STATE"] {
        let at = lines[1].find(col).expect("column");
        assert_eq!(&lines[2][at - 2..at], "  ", "{col} aligned:\n{}", r.stdout);
    }
    assert!(lines[2].contains("alive"), "{}", r.stdout);

    let r = sidecar(&["services"], &[("SIDECAR_HTTP_ADDR", &addr)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME  "), "{}", r.stdout);
    let row = lines
        .iter()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("web listed:\n{}", r.stdout));
    assert!(row.contains("ALIVE") && row.contains("node-ops"), "{row}");
    assert_eq!(
        row.find("ALIVE"),
        lines[0].find("STATUS"),
        "aligned:\n{}",
        r.stdout
    );

    // The flags win over the variable.
    let r = sidecar(
        &["members", "--api-url", &agent.base],
        &[("SIDECAR_HTTP_ADDR", "127.0.0.1:1")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // An agent that is not there: an error that says where it looked and what to set.
    let closed = free_port("127.0.0.1");
    let r = sidecar(
        &["members", "--http-addr", &format!("127.0.0.1:{closed}")],
        &[],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!("127.0.0.1:{closed}"))
            && r.stderr.contains("SIDECAR_HTTP_ADDR")
            && r.stderr.contains("Connection refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn drain_with_the_agents_token_and_clear_errors_without_it() {
    let agent = Agent::start(
        "node-drain",
        &web(free_port("127.0.0.1")),
        &[("SIDECAR_API_TOKEN", "s3cret")],
    );
    let id = agent.wait_status("web", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let addr = format!("127.0.0.1:{}", port_of(&agent));
    // Without the token: refused, and told what to set.
    let r = sidecar(&["drain", &id], &[("SIDECAR_HTTP_ADDR", &addr)]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("401") && r.stderr.contains("SIDECAR_API_TOKEN"),
        "{}",
        r.stderr
    );
    // The token from a file, as the agent reads it.
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("write");
    let token = token.display().to_string();
    let env = [
        ("SIDECAR_HTTP_ADDR", addr.as_str()),
        ("SIDECAR_API_TOKEN_FILE", token.as_str()),
    ];
    let r = sidecar(&["drain", &id], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("DRAINING"), "{}", r.stdout);
    agent.wait_status("web", 4);
    // An unknown ID: the agent's 404 message.
    let r = sidecar(&["drain", "no-such-id"], &env);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("404") && r.stderr.contains("no-such-id"),
        "{}",
        r.stderr
    );
}

/// Needs `POST /api/services/{id}/undrain` and `/api/maintenance` in the agent.
#[test]
fn undrain_and_maintenance_from_the_command_line() {
    let agent = Agent::start("node-maint", &web(free_port("127.0.0.1")), &[]);
    let id = agent.wait_status("web", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let addr = format!("127.0.0.1:{}", port_of(&agent));
    let env = [("SIDECAR_HTTP_ADDR", addr.as_str())];
    assert_eq!(sidecar(&["drain", &id], &env).code, 0);
    agent.wait_status("web", 4);
    let r = sidecar(&["undrain", &id], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    agent.wait_status("web", 0);
    let r = sidecar(&["undrain", "no-such-id"], &env);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("404"), "{}", r.stderr);

    let r = sidecar(&["maint", "status"], &env);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "maintenance: off"),
        "{}",
        r.stderr
    );
    let r = sidecar(&["maint", "on", "--reason", "kernel upgrade"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("maintenance: on since ") && r.stdout.contains("kernel upgrade"),
        "{}",
        r.stdout
    );
    agent.wait_status("web", 4);
    let r = sidecar(&["maint", "status"], &env);
    assert!(r.stdout.contains("kernel upgrade"), "{}", r.stdout);
    let r = sidecar(&["maint", "off"], &env);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "maintenance: off"),
        "{}",
        r.stderr
    );
    agent.wait_status("web", 0);
}

#[test]
fn plugins_check_of_this_host_passes_the_allow_list_with_the_advertise_ip() {
    // A service on this host's advertise IP (127.0.0.3 plays it).
    let listener = std::net::TcpListener::bind("127.0.0.3:0").expect("bind 127.0.0.3");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming().take(8) {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        }
    });
    let url = format!("http://127.0.0.3:{port}/health");
    let r = sidecar(
        &[
            "plugins",
            "check",
            "HttpGet",
            &url,
            "--advertise-ip",
            "127.0.0.3",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("healthy"), "{}", r.stdout);
    // The agent's setting works the same.
    let r = sidecar(
        &["plugins", "check", "HttpGet", &url],
        &[("SIDECAR_ADVERTISE_IP", "127.0.0.3")],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Another address is not this host: the allow-list denies it.
    let r = sidecar(
        &[
            "plugins",
            "check",
            "HttpGet",
            &url,
            "--advertise-ip",
            "127.0.0.4",
        ],
        &[],
    );
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("127.0.0.3"),
        "the denial names the address: {}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn plugins_list_marks_the_proxy_emitters_the_agent_uses() {
    let used = |stdout: &str, name: &str| {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed:\n{stdout}"));
        !row.contains("unused")
    };
    let r = sidecar(&["plugins", "list"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(used(&r.stdout, "proxy-haproxy"), "{}", r.stdout);
    assert!(used(&r.stdout, "proxy-envoy"), "{}", r.stdout);
    let r = sidecar(
        &["plugins", "list"],
        &[("HAPROXY_DISABLE", "true"), ("ENVOY_USE_GRPC_API", "false")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!used(&r.stdout, "proxy-haproxy"), "{}", r.stdout);
    assert!(!used(&r.stdout, "proxy-envoy"), "{}", r.stdout);
    // The columns line up.
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines[0].find("KIND").expect("KIND");
    assert!(
        lines[1..].iter().all(|l| &l[at - 2..at] == "  "),
        "{}",
        r.stdout
    );
}

/// In a network namespace of its own, a host with Docker's bridges (`docker0` and a
/// `br-*`, created first, so listed first), an interface that is down and a
/// real-looking one: the agent advertises the last and logs why.
#[test]
fn advertise_ip_detection_skips_the_docker_bridge_and_says_why() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("static.json"), "[]").expect("write");
    let log = dir.path().join("agent.log");
    let script = format!(
        r#"set -e
ip link set lo up
ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up
ip link add br-0a1b2c3d type bridge && ip addr add 172.18.0.1/16 dev br-0a1b2c3d && ip link set br-0a1b2c3d up
ip link add eth1 type veth peer name eth1-peer && ip addr add 10.9.9.9/24 dev eth1
ip link add ens5 type veth peer name ens5-peer && ip addr add 10.1.2.3/24 dev ens5 && ip link set ens5 up
"{bin}" agent --discover static --http-addr 127.0.0.1:7777 2>"{log}" &
pid=$!
for _ in $(seq 1 600); do grep -q "agent ready" "{log}" && break; sleep 0.1; done
"{bin}" plugins check AlwaysSuccessful >/dev/null
kill $pid; wait $pid || true
"#,
        bin = sidecar_bin().display(),
        log = log.display()
    );
    let st = Command::new("unshare")
        .args(["-n", "bash", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .env("STATIC_CONFIG_FILE", dir.path().join("static.json"))
        .env(
            "SIDECAR_CACHE_DIR",
            workspace_root().join("target/e2e-plugin-cache"),
        )
        .status()
        .expect("unshare");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("advertise IP detected"))
        .unwrap_or_else(|| panic!("the choice is logged:\n{text}"));
    assert!(
        line.contains("10.1.2.3") && line.contains("ens5"),
        "chose ens5: {line}"
    );
    assert!(
        line.contains("docker0 172.17.0.1: Docker bridge")
            && line.contains("br-0a1b2c3d 172.18.0.1: Docker network bridge")
            && line.contains("eth1 10.9.9.9: interface down"),
        "says what it skipped and why: {line}"
    );
    assert!(text.contains("agent ready"), "{text}");
}

/// The daemon under systemd's notify protocol: READY=1 once it serves, WATCHDOG=1 pets
/// while its loops turn, and none once the gossip loop is frozen (the test-only stall).
#[test]
fn readiness_and_a_watchdog_that_stops_when_the_gossip_loop_stalls() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let sock_env = sock_path.display().to_string();
    let agent = Agent::start(
        "node-notify",
        &web(free_port("127.0.0.1")),
        &[
            ("NOTIFY_SOCKET", sock_env.as_str()),
            ("WATCHDOG_USEC", "3000000"),
            ("SIDECAR_TEST_STALL", "gossip:12s"),
        ],
    );
    let started = Instant::now();
    let mut messages: Vec<(Instant, String)> = Vec::new();
    let mut buf = [0u8; 512];
    let mut frozen_at = None;
    // Until the stall is logged, then 12 s more (two periods of grace, then nothing).
    while frozen_at.is_none_or(|t: Instant| t.elapsed() < Duration::from_secs(12)) {
        assert!(
            started.elapsed() < WAIT * 3,
            "no stall logged: {}",
            agent.log()
        );
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into()));
        }
        if frozen_at.is_none() && agent.log().contains("freezing this loop") {
            frozen_at = Some(Instant::now());
        }
    }
    let frozen_at = frozen_at.expect("frozen");
    assert!(
        messages[0].1.starts_with("READY=1\n") && messages[0].1.contains("STATUS=serving"),
        "{messages:?}"
    );
    let pets = |from: Instant, to: Instant| {
        messages
            .iter()
            .filter(|(t, m)| m == "WATCHDOG=1" && *t >= from && *t < to)
            .count()
    };
    assert!(
        pets(started, frozen_at) >= 2,
        "pets while the loops turn: {messages:?}"
    );
    // One period after the stall a check may still see the last turns; after two, none.
    let quiet_from = frozen_at + Duration::from_secs(4);
    assert_eq!(
        pets(quiet_from, Instant::now()),
        0,
        "no pets once gossip is stalled: {messages:?}"
    );
    let log = agent.log();
    assert!(
        log.contains("not petting the systemd watchdog") && log.contains("gossip"),
        "{log}"
    );
    // The API still answers: only the watchdog knows the daemon is sick.
    assert_eq!(agent.get("/health").status, 200);
}

#[test]
fn help_shows_every_setting_and_the_reference_is_generated_from_the_same_table() {
    let r = sidecar(&["agent", "--help"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reference = std::fs::read_to_string(workspace_root().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    let generated = sidecar(&["config", "reference"], &[]);
    assert_eq!(generated.code, 0);
    assert!(
        generated.stdout == reference,
        "docs/configuration.md is stale: `sidecar config reference > docs/configuration.md`"
    );
    // Every variable of the reference's tables is in --help, flags with `[env: ...]`.
    let mut n = 0;
    for line in reference.lines().filter(|l| l.starts_with("| `")) {
        let var = line[3..].split('`').next().expect("name");
        n += 1;
        assert!(r.stdout.contains(var), "{var} missing from --help");
        if !line.contains("| – |") {
            // A flag of the agent or of the client commands.
            let client = sidecar(&["members", "--help"], &[]).stdout;
            assert!(
                r.stdout.contains(&format!("[env: {var}"))
                    || client.contains(&format!("[env: {var}")),
                "{var}'s flag shows its variable"
            );
        }
    }
    assert!(n > 60, "{n} settings");
    assert!(r.stdout.contains("[default: 7946]"), "defaults in --help");
    // A bare `sidecar --help` runs the agent, so it says the same.
    assert!(
        sidecar(&["--help"], &[])
            .stdout
            .contains("SIDECAR_HTTP_MAX_WATCHERS")
    );
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definitions() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef sidecar"),
        ("fish", "complete -c sidecar"),
    ] {
        let r = sidecar(&["completions", shell], &[]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains(marker), "{shell}");
        assert!(
            r.stdout.contains("undrain"),
            "{shell} completes subcommands"
        );
    }
    let r = sidecar(&["manpage"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(".TH sidecar 1"), "{}", &r.stdout[..200]);
    assert!(r.stdout.contains("cluster\\-ip"), "flags are documented");
    // `man` renders it (when installed).
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().expect("tmp");
        let page = dir.path().join("sidecar.1");
        std::fs::write(&page, &r.stdout).expect("write");
        let out = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("SIDECAR_SEEDS"),
            "rendered page"
        );
    }
}

/// A self-signed certificate for 127.0.0.1 (made by `openssl`): `(cert, key)` paths.
fn self_signed(dir: &std::path::Path, name: &str) -> (String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=sidecar-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // A server certificate, not a CA: rustls refuses a CA used as the end entity.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl req");
    (cert.display().to_string(), key.display().to_string())
}

/// Needs the API's TLS (`SIDECAR_API_TLS_CERT`/`_KEY`) in the agent: the client then
/// speaks HTTPS and trusts the agent's certificate from the same settings.
#[test]
fn the_client_follows_the_agent_to_https_with_its_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = self_signed(dir.path(), "api");
    let (other, _) = self_signed(dir.path(), "other");
    let tls = [
        ("SIDECAR_API_TLS_CERT", cert.as_str()),
        ("SIDECAR_API_TLS_KEY", key.as_str()),
    ];
    let port = free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let dir2 = tempfile::tempdir().expect("tmp");
    std::fs::write(dir2.path().join("static.json"), web(free_port("127.0.0.1"))).expect("write");
    let log = std::fs::File::create(dir2.path().join("agent.log")).expect("log");
    let _agent = sidecar_e2e::KillOnDrop::spawn(
        Command::new(sidecar_bin())
            .arg("agent")
            .current_dir(dir2.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(tls)
            .env("SIDECAR_HTTP_ADDR", &addr)
            .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
            .env("SIDECAR_BIND_IP", "127.0.0.1")
            .env("SIDECAR_BIND_PORT", free_port("127.0.0.1").to_string())
            .env("SIDECAR_DISCOVERY", "static")
            .env("HAPROXY_DISABLE", "true")
            .env("ENVOY_USE_GRPC_API", "false")
            .env(
                "SIDECAR_CACHE_DIR",
                workspace_root().join("target/e2e-plugin-cache"),
            )
            .stdout(Stdio::null())
            .stderr(log),
    );
    let env = [
        ("SIDECAR_HTTP_ADDR", addr.as_str()),
        ("SIDECAR_API_TLS_CERT", cert.as_str()),
    ];
    let deadline = Instant::now() + WAIT * 2;
    let r = loop {
        let r = sidecar(&["services"], &env);
        if (r.code == 0 && r.stdout.contains("web ")) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(r.code, 0, "over HTTPS: {}", r.stderr);
    // Another certificate to trust: the handshake fails, and the error says so.
    let r = sidecar(
        &["members"],
        &[
            ("SIDECAR_HTTP_ADDR", addr.as_str()),
            ("SIDECAR_API_TLS_CA", other.as_str()),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!("https://{addr}"))
            && r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
}
