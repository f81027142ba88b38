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
