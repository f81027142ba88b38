//! HAProxy settings: Sidecar's `HAPROXY_*` variables plus a few of ours.

use crate::config::Env;
use crate::config::env::EnvError;
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
}

impl HaproxyConfig {
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let s =
            |name: &str, default: &str| env.string(name, None).unwrap_or_else(|| default.into());
        Ok(HaproxyConfig {
            disabled: env.bool("HAPROXY_DISABLE", None)?.unwrap_or(false),
            config_file: PathBuf::from(
                env.non_empty("HAPROXY_CONFIG_FILE", None)
                    .unwrap_or_else(|| "/etc/haproxy.cfg".into()),
            ),
            pid_file: PathBuf::from(
                env.non_empty("HAPROXY_PID_FILE", None)
                    .unwrap_or_else(|| "/var/run/haproxy.pid".into()),
            ),
            reload_command: env.non_empty("HAPROXY_RELOAD_COMMAND", None),
            verify_command: env.non_empty("HAPROXY_VERIFY_COMMAND", None),
            bind_ip: env
                .string("HAPROXY_BIND_IP", Some("BIND_IP"))
                .unwrap_or_else(|| "192.168.168.168".into()),
            template_file: env
                .non_empty("HAPROXY_TEMPLATE_FILE", None)
                .map(PathBuf::from),
            user: s("HAPROXY_USER", "haproxy"),
            group: s("HAPROXY_GROUP", ""),
            use_hostnames: env.bool("HAPROXY_USE_HOSTNAMES", None)?.unwrap_or(false),
            binary: env
                .non_empty("HAPROXY_BINARY", None)
                .unwrap_or_else(|| "haproxy".into()),
            stats_socket: PathBuf::from(
                env.non_empty("HAPROXY_STATS_SOCKET", None)
                    .unwrap_or_else(|| "/var/run/haproxy_stats.sock".into()),
            ),
            master_socket: PathBuf::from(
                env.non_empty("HAPROXY_MASTER_SOCKET", None)
                    .unwrap_or_else(|| "/var/run/haproxy-master.sock".into()),
            ),
            stats_port: env.int("HAPROXY_STATS_PORT", None)?.unwrap_or(3212),
            stats_internal_port: env
                .int("HAPROXY_STATS_INTERNAL_PORT", None)?
                .unwrap_or(32012),
            min_reload_interval: env
                .duration("HAPROXY_MIN_RELOAD_INTERVAL", None)?
                .unwrap_or(Duration::from_secs(2)),
            runtime_api: env.bool("HAPROXY_RUNTIME_API", None)?.unwrap_or(true),
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_sidecar_without_the_user_fallback() {
        let env = Env::from_pairs([("USER", "root"), ("BIND_IP", "10.1.1.1")]);
        let c = HaproxyConfig::load(&env).expect("valid");
        assert_eq!(c.user, "haproxy");
        assert_eq!(c.bind_ip, "10.1.1.1");
        assert_eq!(c.config_file, PathBuf::from("/etc/haproxy.cfg"));
        assert_eq!(c.pid_file, PathBuf::from("/var/run/haproxy.pid"));
        assert!(!c.disabled);
        assert_eq!(c.reload_command, None);
    }

    #[test]
    fn overrides_and_errors() {
        let env = Env::from_pairs([
            ("HAPROXY_DISABLE", "true"),
            ("HAPROXY_USER", ""),
            ("HAPROXY_RELOAD_COMMAND", "systemctl reload haproxy"),
        ]);
        let c = HaproxyConfig::load(&env).expect("valid");
        assert!(c.disabled);
        assert_eq!(c.user, "");
        assert_eq!(
            c.reload_command.as_deref(),
            Some("systemctl reload haproxy")
        );
        assert!(HaproxyConfig::load(&Env::from_pairs([("HAPROXY_DISABLE", "yes")])).is_err());
    }

    #[test]
    fn template_file_is_passed_as_contents() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("t.j2");
        std::fs::write(&path, "{{ bind_ip }}").expect("write");
        let env = Env::from_pairs([("HAPROXY_TEMPLATE_FILE", path.display().to_string())]);
        let s = HaproxyConfig::load(&env)
            .expect("valid")
            .plugin_settings()
            .expect("readable");
        assert!(s.contains(&("template".into(), "{{ bind_ip }}".into())));
        let env = Env::from_pairs([("HAPROXY_TEMPLATE_FILE", "/nonexistent/t.j2")]);
        assert!(
            HaproxyConfig::load(&env)
                .expect("valid")
                .plugin_settings()
                .is_err()
        );
    }
}
