//! Shared plumbing for the end-to-end tests (and the host's proxy driver tests): locate
//! the built binaries, pick ports, run processes that are always killed, poll with
//! deadlines instead of sleeping; backends and clients for proxy traffic ([`net`]) and
//! the real Envoy ([`envoy`]).

#[path = "support/dns.rs"]
pub mod dns;
#[path = "support/envoy.rs"]
pub mod envoy;
#[path = "support/forge.rs"]
pub mod forge;
#[path = "support/mixed.rs"]
pub mod mixed;
#[path = "support/net.rs"]
pub mod net;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// A member of a loopback bench cluster: node `n{i}` on 127.0.0.`i`, static discovery
/// from `file`, proxies off, joining the seed's gossip port `port` on 127.0.0.1 and
/// retrying while the seed starts (they are started together).
pub fn bench_agent(i: usize, port: u16, http: &str, file: &Path) -> Command {
    let ip = format!("127.0.0.{i}");
    let mut cmd = Command::new(sidecar_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", file)
        .env("SIDECAR_BIND_PORT", port.to_string())
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .env("RUST_LOG", "warn")
        .env("SIDECAR_JOIN_RETRY", "true")
        .args(["agent", "--node-name", &format!("n{i}"), "--bind-ip", &ip])
        .args(["--advertise-ip", &ip, "--http-addr", http])
        .args(["--cluster-ip", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The daemon under test: `$SIDECAR_BIN`, else `target/release/sidecar`.
pub fn sidecar_bin() -> PathBuf {
    let path = std::env::var_os("SIDECAR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/sidecar"));
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build --release`) or set SIDECAR_BIN",
        path.display()
    );
    path
}

/// A built wasm plugin from the plugins workspace (test fixtures included).
pub fn plugin_wasm(crate_name: &str) -> PathBuf {
    let file = format!("{}.wasm", crate_name.replace('-', "_"));
    let path = workspace_root()
        .join("target/plugins/wasm32-wasip2/release")
        .join(file);
    assert!(
        path.exists(),
        "{} not found: `cargo build --release` builds the plugins",
        path.display()
    );
    path
}

/// The benchmark clients' runtime: one thread drives every connection, so the client
/// costs the shared two cores as little as possible. Exits 1 if it can't be built.
pub fn client_runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    }
}

/// A TCP port on `ip` that was free a moment ago.
pub fn free_port(ip: &str) -> u16 {
    let addr: SocketAddr = format!("{ip}:0").parse().expect("valid ip");
    TcpListener::bind(addr)
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
        KillOnDrop(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
