//! Docker discovery end to end, against the real engine: labelled containers of a tiny
//! local image (`scripts/setup.sh` imports a static busybox; built here too if missing)
//! are discovered, health-checked, announced and tombstoned when they stop.

mod daemon_common;

use daemon_common::Agent;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const IMAGE: &str = "sidecar-test-busybox:latest";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ensure_image() {
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        let setup = sidecar_e2e::workspace_root().join("scripts/setup.sh");
        let st = Command::new("bash")
            .arg(setup)
            .status()
            .expect("run scripts/setup.sh");
        assert!(st.success(), "scripts/setup.sh failed to build {IMAGE}");
    }
}

/// Containers removed when the test ends, whatever happens.
struct Containers(Vec<String>);

impl Containers {
    fn run(&mut self, name: &str, args: &[&str], cmd: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        all.push(IMAGE);
        all.extend_from_slice(cmd);
        let id = docker(&all);
        self.0.push(name.to_string());
        id
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

#[test]
fn labelled_containers_are_discovered_checked_announced_and_tombstoned() {
    ensure_image();
    let tag = format!(
        "sce2e{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000)
            .unwrap_or(0)
    );
    let mut containers = Containers(Vec::new());
    let svc = |n: &str| format!("{tag}-{n}");

    let web_name = format!("{tag}-web");
    let web_id = containers.run(
        &web_name,
        &[
            "-p",
            "127.0.0.1::80",
            "--label",
            &format!("ServiceName={}", svc("web")),
            "--label",
            "ServicePort_80=18080",
            "--label",
            "HealthCheck=HttpGet",
            "--label",
            "HealthCheckArgs=http://{{ host }}:{{ tcp 18080 }}/version",
            "--label",
            "ProxyMode=tcp",
        ],
        &[],
    );
    containers.run(
        &format!("{tag}-hidden"),
        &[
            "--label",
            &format!("ServiceName={}", svc("hidden")),
            "--label",
            "SidecarDiscover=false",
        ],
        &[],
    );
    let agent = Agent::start(
        &format!("{tag}-node"),
        "[]",
        &[
            ("SIDECAR_DISCOVERY", "docker"),
            ("SIDECAR_HEALTH_INTERVAL", "500ms"),
            ("DOCKER_HOST", "unix:///var/run/docker.sock"),
        ],
    );

    let web = agent.wait_status(&svc("web"), 0);
    assert_eq!(web["ID"], &web_id[..12]);
    assert_eq!(web["Image"], IMAGE);
    assert_eq!(web["ProxyMode"], "tcp");
    assert_eq!(web["Hostname"], agent.node.as_str());
    let host_port: u16 = docker(&["port", &web_name, "80/tcp"])
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("published port");
    assert_eq!(
        web["Ports"],
        serde_json::json!([{"Type":"tcp","Port":host_port,"ServicePort":18080,"IP":"127.0.0.1"}])
    );

    // Started after the agent, published on every address (0.0.0.0 and ::), with a
    // label that does not parse and no HealthCheck label: the default check applies.
    containers.run(
        &format!("{tag}-odd"),
        &[
            "-p",
            "80",
            "--label",
            &format!("ServiceName={}", svc("odd")),
            "--label",
            "ServicePort_80=eighty",
        ],
        &[],
    );
    let odd = agent.wait_status(&svc("odd"), 0);
    let ports = odd["Ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "IPv4/IPv6 duplicates merged: {ports:?}");
    assert_eq!(ports[0]["ServicePort"], 0);
    assert_eq!(
        ports[0]["IP"], "127.0.0.1",
        "0.0.0.0 maps to the advertise IP"
    );
    assert!(
        agent.log().contains("ServicePort_80"),
        "the bad label is reported"
    );

    // A container whose check fails is UNHEALTHY.
    containers.run(
        &format!("{tag}-sick"),
        &[
            "-p",
            "127.0.0.1::80",
            "--label",
            &format!("ServiceName={}", svc("sick")),
            "--label",
            "HealthCheck=HttpGet",
            "--label",
            "HealthCheckArgs=http://{{ host }}:{{ tcp 1 }}/nothing-here",
        ],
        &[],
    );
    agent.wait_status(&svc("sick"), 2);

    // A container's labels ask for a check that runs a program on the host. `/bin/true`
    // would pass; the daemon refuses to run it (no SIDECAR_CONTAINER_EXEC_CHECKS), so
    // the service is UNHEALTHY instead of the image's author running commands here.
    containers.run(
        &format!("{tag}-exec"),
        &[
            "-p",
            "127.0.0.1::80",
            "--label",
            &format!("ServiceName={}", svc("exec")),
            "--label",
            "HealthCheck=External",
            "--label",
            "HealthCheckArgs=/bin/true",
        ],
        &[],
    );
    agent.wait_status(&svc("exec"), 2);

    assert!(
        !agent
            .instances()
            .iter()
            .any(|s| s["Name"] == svc("hidden").as_str()),
        "SidecarDiscover=false is not announced"
    );

    docker(&["stop", "-t", "0", &web_name]);
    let gone = agent.wait_status(&svc("web"), 1);
    assert_eq!(gone["ID"], &web_id[..12]);
}

/// Forwards a unix socket to the Docker engine's until stopped: an engine we can cut off.
struct SocketProxy {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl SocketProxy {
    fn start(path: std::path::PathBuf) -> SocketProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind proxy socket");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let (st, cs) = (stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), engine.try_clone()),
                    (engine.try_clone(), client.try_clone()),
                ];
                for pair in pairs {
                    if let (Ok(mut from), Ok(mut to)) = pair {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
                let mut held = cs.lock().expect("lock");
                held.push(client);
                held.push(engine);
            }
        });
        SocketProxy { path, stop, conns }
    }

    /// Cuts every connection and refuses new ones.
    fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::os::unix::net::UnixStream::connect(&self.path); // wake the accept loop
        for c in self.conns.lock().expect("lock").drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn an_unreachable_engine_keeps_the_last_list() {
    ensure_image();
    let tag = format!(
        "sce2u{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000)
            .unwrap_or(0)
    );
    let mut containers = Containers(Vec::new());
    let name = format!("{tag}-web");
    containers.run(
        &name,
        &[
            "-p",
            "127.0.0.1::80",
            "--label",
            &format!("ServiceName={tag}-web"),
        ],
        &[],
    );
    let sock_dir = tempfile::tempdir().expect("tempdir");
    let proxy = SocketProxy::start(sock_dir.path().join("docker.sock"));
    let url = format!("unix://{}", proxy.path.display());
    let agent = Agent::start(
        &format!("{tag}-node"),
        "[]",
        &[
            ("SIDECAR_DISCOVERY", "docker"),
            ("DOCKER_URL", url.as_str()),
        ],
    );
    agent.wait_status(&format!("{tag}-web"), 0);

    proxy.stop();
    sidecar_e2e::wait_for("the outage to be noticed", daemon_common::WAIT, || {
        let m = agent.get("/metrics").body;
        m.lines()
            .any(|l| l == "sidecar_discovery_source_healthy{source=\"docker\"} 0")
            .then_some(())
    });
    assert!(agent.log().contains("unreachable"), "the outage is logged");
    let still = agent
        .instances()
        .into_iter()
        .find(|s| s["Name"] == format!("{tag}-web").as_str())
        .expect("still announced");
    assert_eq!(
        still["Status"], 0,
        "the last list stays, and its check still passes"
    );
}
