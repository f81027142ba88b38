//! The ways to install sidecar, each used as a user would: the Debian package installed
//! with `dpkg -i` (into a root of the test's own, then removed and purged), its systemd
//! unit checked by `systemd-analyze verify`, its default configuration run by the
//! daemon, and the `FROM scratch` container image built with `docker build` from the
//! static binary and run with Docker discovery of a sibling container.

mod daemon_common;

use daemon_common::{Agent, WAIT};
use sidecar_e2e::{sidecar_bin, wait_for, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn version() -> String {
    run(Command::new(sidecar_bin()).arg("--version"))
}

fn is_static(bin: &Path) -> bool {
    let headers = run(Command::new("readelf").arg("-l").arg(bin));
    !headers.contains("program interpreter")
}

#[test]
fn the_debian_package_installs_runs_and_removes_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let deb = run(
        Command::new(workspace_root().join("packaging/build-deb.sh"))
            .arg(sidecar_bin())
            .arg(tmp.path().join("out")),
    );
    let info = run(Command::new("dpkg-deb").args(["--info", &deb]));
    assert!(info.contains("Package: sidecar"), "{info}");
    assert!(info.contains(&format!("Version: {}", &version()["sidecar ".len()..])));

    // An empty system root with its own dpkg database.
    let root = tmp.path().join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        c.arg(format!("--root={}", root.display()))
            .arg("--force-depends")
            .args(args);
        run(&mut c)
    };
    dpkg(&["-i", &deb]);
    let status = dpkg(&["-s", "sidecar"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    let files = [
        "usr/bin/sidecar",
        "usr/lib/systemd/system/sidecar.service",
        "etc/sidecar/sidecar.env",
        "etc/sidecar/plugins.toml",
        "etc/sidecar/static.json",
        "usr/share/man/man1/sidecar.1.gz",
        "usr/share/bash-completion/completions/sidecar",
        "usr/share/zsh/vendor-completions/_sidecar",
        "usr/share/fish/vendor_completions.d/sidecar.fish",
        "usr/share/doc/sidecar/configuration.md",
    ];
    for f in files {
        assert!(root.join(f).is_file(), "{f} installed");
    }
    assert_eq!(
        run(Command::new(root.join("usr/bin/sidecar")).arg("--version")),
        version()
    );
    assert!(
        status.contains("/etc/sidecar/sidecar.env"),
        "conffiles: {status}"
    );

    // The unit as installed.
    verify_unit(&root);

    // The installed default configuration runs.
    let etc = root.join("etc/sidecar");
    let plugins = etc.join("plugins.toml").display().to_string();
    let static_json = etc.join("static.json").display().to_string();
    let agent = Agent::start(
        "node-deb",
        "[]",
        &[
            ("SIDECAR_PLUGINS_FILE", plugins.as_str()),
            ("STATIC_CONFIG_FILE", static_json.as_str()),
        ],
    );
    assert_eq!(agent.get("/health").status, 200);
    drop(agent);

    // Remove keeps the configuration; purge removes it too.
    dpkg(&["-r", "sidecar"]);
    assert!(!root.join("usr/bin/sidecar").exists(), "binary removed");
    assert!(
        root.join("etc/sidecar/sidecar.env").exists(),
        "conffiles kept"
    );
    dpkg(&["-P", "sidecar"]);
    assert!(!root.join("etc/sidecar/sidecar.env").exists(), "purged");
}

/// `systemd-analyze verify` of the installed unit: syntax, known directives, the
/// dependencies systemd itself provides, executable commands. It runs against this
/// machine's systemd units, so `ExecStart` points at the binary in the test's root (the
/// package is not installed on the machine itself); nothing else is changed.
fn verify_unit(root: &Path) {
    let installed =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/sidecar.service")).expect("unit");
    let bin = root.join("usr/bin/sidecar");
    let unit = installed.replace("/usr/bin/sidecar", &bin.display().to_string());
    assert_ne!(unit, installed, "ExecStart runs /usr/bin/sidecar");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("sidecar.service");
    std::fs::write(&path, unit).expect("write unit");
    let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
    else {
        panic!("systemd-analyze is not installed: `scripts/setup.sh` installs it");
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {text}");
    // Warnings about the unit's own lines fail the test too.
    assert!(!text.contains("sidecar.service:"), "{text}");
}

#[test]
fn the_unit_is_notify_with_a_watchdog() {
    let unit =
        std::fs::read_to_string(workspace_root().join("packaging/sidecar.service")).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecStart=/usr/bin/sidecar agent",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(line), "{line}");
    }
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// The Docker socket as the engine is reached here.
fn docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// The static binary: `$SIDECAR_STATIC_BIN`, else the musl build under target/.
fn static_bin() -> PathBuf {
    let path = std::env::var_os("SIDECAR_STATIC_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/x86_64-unknown-linux-musl/release/sidecar")
        });
    assert!(
        path.exists(),
        "{} not found: build it with scripts/build-static.sh or set SIDECAR_STATIC_BIN",
        path.display()
    );
    path
}

/// Containers and images removed when the test ends, whatever happens.
struct Cleanup {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

#[test]
fn the_scratch_image_discovers_a_sibling_container() {
    let bin = static_bin();
    assert!(is_static(&bin), "{} is not static", bin.display());
    let tag = format!(
        "scimg{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000)
            .unwrap_or(0)
    );
    let image = format!("sidecar-e2e:{tag}");
    let mut cleanup = Cleanup {
        containers: Vec::new(),
        images: vec![image.clone()],
    };
    let built = run(
        Command::new(workspace_root().join("packaging/build-image.sh"))
            .arg(&bin)
            .env("SIDECAR_IMAGE", &image),
    );
    assert_eq!(built, image);
    let layers = docker(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        &image,
    ]);
    assert_eq!(layers, "1", "FROM scratch: the binary is the only layer");

    // The sibling: the suite's busybox image, published on loopback, labelled as
    // Sidecar's users label their containers.
    ensure_busybox();
    let web = format!("{tag}-web");
    cleanup.containers.push(web.clone());
    docker(&[
        "run",
        "-d",
        "--name",
        &web,
        "-p",
        "127.0.0.1::80",
        "--label",
        &format!("ServiceName={web}"),
        "--label",
        "HealthCheck=AlwaysSuccessful",
        "sidecar-test-busybox:latest",
    ]);
    let agent = format!("{tag}-sidecar");
    cleanup.containers.push(agent.clone());
    let socket = format!("{}:/var/run/docker.sock", docker_socket().display());
    docker(&[
        "run",
        "-d",
        "--name",
        &agent,
        "-v",
        &socket,
        "-e",
        "HAPROXY_DISABLE=true",
        "-e",
        "ENVOY_USE_GRPC_API=false",
        "-e",
        "SIDECAR_HTTP_ADDR=127.0.0.1:7777",
        "-e",
        "SIDECAR_NODE_NAME=imagehost",
        &image,
    ]);
    // The image's own CLI asks its agent (no shell or curl in a scratch image).
    let row = wait_for("the sibling ALIVE in the image's catalog", WAIT * 2, || {
        let out = Command::new("docker")
            .args([
                "exec",
                &agent,
                "/usr/bin/sidecar",
                "services",
                "--name",
                &web,
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with(&web) && l.contains("ALIVE"))
            .map(String::from)
    });
    assert!(row.contains("imagehost"), "{row}");
    // The daemon logs to stderr; `docker logs` passes it on as its own stderr.
    let out = Command::new("docker")
        .args(["logs", &agent])
        .output()
        .expect("docker logs");
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(logs.contains("agent ready"), "{logs}");
    assert!(logs.contains("advertise IP detected"), "{logs}");
}

fn ensure_busybox() {
    let have = Command::new("docker")
        .args(["image", "inspect", "sidecar-test-busybox:latest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        run(Command::new("bash")
            .arg(workspace_root().join("scripts/setup.sh"))
            .arg("setup_daemon_test_image"));
    }
}
