//! HAProxy settings: Sidecar's `HAPROXY_*` variables plus a few of ours.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyConfig {
    /// `HAPROXY_DISABLE`: no HAProxy management at all.
    pub disabled: bool,
    /// `HAPROXY_CONFIG_FILE` (default `/etc/haproxy.cfg`): the live config file.
    pub config_file: PathBuf,
    /// `HAPROXY_PID_FILE` (default `/var/run/haproxy.pid`): the master's pid.
    pub pid_file: PathBuf,
    /// `HAPROXY_RELOAD_COMMAND`: run with `bash -c` instead of the built-in
    /// master-worker start/reload.
    pub reload_command: Option<String>,
    /// `HAPROXY_VERIFY_COMMAND`: run with `bash -c`; every occurrence of the config
    /// file's path is replaced by the candidate's, which is also in
    /// `$SIDECAR_HAPROXY_CANDIDATE`. Default `haproxy -c -f <candidate>`.
    pub verify_command: Option<String>,
    /// `HAPROXY_BIND_IP` (bare `BIND_IP`, default `192.168.168.168`).
    pub bind_ip: String,
    /// `HAPROXY_TEMPLATE_FILE`: a user template; unset means the plugin's default.
    pub template_file: Option<PathBuf>,
    /// `HAPROXY_USER` (default `haproxy`; empty leaves the line out). Unlike Sidecar
    /// there is no fallback to the shell's `$USER`.
    pub user: String,
    /// `HAPROXY_GROUP` (default empty).
    pub group: String,
    /// `HAPROXY_USE_HOSTNAMES`: servers by hostname instead of IP.
    pub use_hostnames: bool,
    /// `HAPROXY_BINARY` (ours, default `haproxy`).
    pub binary: String,
    /// `HAPROXY_STATS_SOCKET` (ours, default `/var/run/haproxy_stats.sock`): the admin
    /// socket (runtime API, seamless reloads).
    pub stats_socket: PathBuf,
    /// `HAPROXY_MASTER_SOCKET` (ours, default `/var/run/haproxy-master.sock`): the
    /// master CLI, used to reload and to confirm reloads.
    pub master_socket: PathBuf,
    /// `HAPROXY_STATS_PORT` (ours, default 3212; 0 leaves Sidecar's stats frontends out).
    pub stats_port: u16,
    /// `HAPROXY_STATS_INTERNAL_PORT` (ours, default 32012).
    pub stats_internal_port: u16,
    /// `HAPROXY_MIN_RELOAD_INTERVAL` (ours, default 2s): reloads are at least this far
    /// apart; changes in between are coalesced into the next one.
    pub min_reload_interval: Duration,
    /// `HAPROXY_RUNTIME_API` (ours, default true): endpoint-only changes go through the
    /// stats socket without a reload (the file is still rewritten and verified).
    pub runtime_api: bool,
    /// `HAPROXY_MAX_VERIFY_RUNS` (ours, default 32, at least 1): when a candidate fails
    /// `haproxy -c`, at most this many more checks search for the instances to blame
    /// (one culprit among 10,000 instances needs about 28). Instances left unchecked
    /// are held back and retried after `HAPROXY_MIN_RELOAD_INTERVAL`.
    pub max_verify_runs: usize,
}

impl HaproxyConfig {
    /// The settings the host passes to the emitter plugin (the `proxy-haproxy` keys;
    /// plugins.toml settings for the plugin come first and these override them).
    /// `template` carries the template file's contents.
    pub fn plugin_settings(&self) -> std::io::Result<Vec<(String, String)>> {
        let mut out = vec![
            ("bind-ip".to_string(), self.bind_ip.clone()),
            ("user".to_string(), self.user.clone()),
            ("group".to_string(), self.group.clone()),
            ("use-hostnames".to_string(), self.use_hostnames.to_string()),
            (
                "stats-socket".to_string(),
                self.stats_socket.display().to_string(),
            ),
            ("stats-port".to_string(), self.stats_port.to_string()),
            (
                "stats-internal-port".to_string(),
                self.stats_internal_port.to_string(),
            ),
        ];
        if let Some(path) = &self.template_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("HAPROXY_TEMPLATE_FILE {}: {e}", path.display()),
                )
            })?;
            out.push(("template".to_string(), text));
        }
        Ok(out)
    }
}
