//! Proxy settings: Sidecar's `HAPROXY_*` and `ENVOY_*` variables plus ours.

use super::env::{Env, EnvError};
use crate::proxy::ProxyConfig;
use crate::proxy::haproxy::HaproxyConfig;
use crate::proxy::xds::EnvoyConfig;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// What `sidecar envoy-bootstrap` needs: the Envoy settings and this node's name
/// (`SIDECAR_NODE_NAME`, else the host name).
pub fn envoy_from_process() -> Result<(EnvoyConfig, String), EnvError> {
    let env = Env::from_process();
    let node = env
        .non_empty("SIDECAR_NODE_NAME", None)
        .unwrap_or_else(super::agent::system_hostname);
    Ok((EnvoyConfig::load(&env)?, node))
}

impl ProxyConfig {
    pub fn load(env: &Env) -> anyhow::Result<Self> {
        Ok(ProxyConfig {
            haproxy: HaproxyConfig::load(env)?,
            envoy: EnvoyConfig::load(env)?,
            haproxy_emitter: env
                .non_empty("HAPROXY_EMITTER", None)
                .unwrap_or_else(|| "proxy-haproxy".into()),
            envoy_emitter: env
                .non_empty("ENVOY_EMITTER", None)
                .unwrap_or_else(|| "proxy-envoy".into()),
        })
    }
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
            max_verify_runs: env
                .int("HAPROXY_MAX_VERIFY_RUNS", None)?
                .unwrap_or(32)
                .max(1),
        })
    }
}

impl EnvoyConfig {
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let grpc_bind_ip = match env.non_empty("ENVOY_GRPC_BIND_IP", None) {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(v) => v.parse().map_err(|_| EnvError {
                name: "ENVOY_GRPC_BIND_IP".into(),
                value: v.clone(),
                reason: "not an IP address".into(),
            })?,
        };
        Ok(EnvoyConfig {
            enabled: env.bool("ENVOY_USE_GRPC_API", None)?.unwrap_or(true),
            bind_ip: env
                .string("ENVOY_BIND_IP", Some("BIND_IP"))
                .unwrap_or_else(|| "192.168.168.168".into()),
            use_hostnames: env.bool("ENVOY_USE_HOSTNAMES", None)?.unwrap_or(false),
            grpc_port: env.int("ENVOY_GRPC_PORT", None)?.unwrap_or(7776),
            grpc_bind_ip,
        })
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
        assert_eq!(c.max_verify_runs, 32);
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
    #[test]
    fn defaults_and_overrides() {
        let c = EnvoyConfig::load(&Env::default()).expect("defaults");
        assert!(c.enabled);
        assert_eq!(c.grpc_addr().to_string(), "127.0.0.1:7776");
        assert_eq!(c.bind_ip, "192.168.168.168");
        let env = Env::from_pairs([
            ("ENVOY_USE_GRPC_API", "false"),
            ("BIND_IP", "127.0.0.2"),
            ("ENVOY_GRPC_PORT", "17776"),
            ("ENVOY_GRPC_BIND_IP", "0.0.0.0"),
        ]);
        let c = EnvoyConfig::load(&env).expect("valid");
        assert!(!c.enabled);
        assert_eq!(c.bind_ip, "127.0.0.2");
        assert_eq!(c.grpc_addr().to_string(), "0.0.0.0:17776");
        assert!(EnvoyConfig::load(&Env::from_pairs([("ENVOY_GRPC_PORT", "x")])).is_err());
    }
}
