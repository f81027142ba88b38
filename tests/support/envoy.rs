//! The real `envoy` binary for proxy tests: where it is, starting it with a bootstrap,
//! and reading its admin interface.

use crate::{KillOnDrop, workspace_root};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `$ENVOY_BIN`, else `target/tools/envoy` (`scripts/setup.sh` installs it).
pub fn envoy_bin() -> PathBuf {
    let p = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/tools/envoy"));
    assert!(
        p.exists(),
        "{} not found: run scripts/setup.sh",
        p.display()
    );
    p
}

/// Envoy running `bootstrap` (YAML), its config and log in `dir` named after `label`.
pub fn spawn(dir: &Path, label: &str, bootstrap: &[u8]) -> KillOnDrop {
    let path = dir.join(format!("envoy-{label}.yaml"));
    std::fs::write(&path, bootstrap).expect("write the bootstrap");
    let log = std::fs::File::create(dir.join(format!("envoy-{label}.log"))).expect("log");
    KillOnDrop::spawn(
        Command::new(envoy_bin())
            .arg("-c")
            .arg(&path)
            .args(["--disable-hot-restart", "-l", "warning"])
            .stdout(Stdio::null())
            .stderr(log),
    )
}

/// GET on Envoy's admin interface; the body, or empty if it does not answer.
pub fn admin_get(admin: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", admin)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// A counter or gauge from Envoy's admin `/stats`.
pub fn envoy_stat(admin: u16, name: &str) -> Option<u64> {
    admin_get(admin, &format!("/stats?filter=^{name}$"))
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .and_then(|v| v.trim().parse().ok())
        })
}
