//! Discovery settings: `SIDECAR_DISCOVERY` / `--discover`, `STATIC_CONFIG_FILE`,
//! `SIDECAR_STATIC_MAX_BYTES`, `DOCKER_URL`, `SIDECAR_DOCKER_RESYNC`.
//!
//! Bare-name fallbacks (`DISCOVERY`, `CONFIG_FILE`, `URL`, `NAMER`) are not honoured:
//! `CONFIG_FILE` is shared with HAProxy's group and `URL` is too generic to be safe.

use super::agent::ConfigError;
use super::env::Env;
use crate::discovery::docker::DockerConfig;
use crate::discovery::{DiscoveryConfig, DockerEndpoint, Method};
use std::path::PathBuf;
use std::time::Duration;

/// 32 MiB: some 100,000 services in Sidecar's format, far above any real host.
pub const DEFAULT_STATIC_MAX_BYTES: u64 = 32 << 20;

impl DiscoveryConfig {
    /// `flags` (repeated `--discover`) replace `SIDECAR_DISCOVERY` when given.
    pub fn load(env: &Env, flags: &[String]) -> Result<Self, ConfigError> {
        let names: Vec<String> = if flags.is_empty() {
            env.list("SIDECAR_DISCOVERY", None)
                .unwrap_or_else(|| vec!["docker".to_string()])
        } else {
            flags
                .iter()
                .flat_map(|f| super::env::split_list(f))
                .collect()
        };
        let mut methods = Vec::new();
        let mut unknown = Vec::new();
        for n in names {
            let m = match n.to_ascii_lowercase().as_str() {
                "docker" => Method::Docker,
                "static" => Method::Static,
                _ => {
                    unknown.push(n);
                    continue;
                }
            };
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        let docker = match env.non_empty("DOCKER_URL", None) {
            Some(url) => DockerEndpoint::Url(url),
            None => DockerEndpoint::Defaults,
        };
        let static_max_bytes = env
            .int::<u64>("SIDECAR_STATIC_MAX_BYTES", None)?
            .unwrap_or(DEFAULT_STATIC_MAX_BYTES);
        if static_max_bytes == 0 {
            return Err(ConfigError::Invalid(
                "SIDECAR_STATIC_MAX_BYTES must be positive".into(),
            ));
        }
        Ok(DiscoveryConfig {
            methods,
            static_file: env
                .non_empty("STATIC_CONFIG_FILE", None)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("static.json")),
            static_max_bytes,
            docker,
            unknown,
        })
    }
}

impl DockerConfig {
    pub fn load(env: &Env) -> Self {
        DockerConfig {
            resync: env
                .duration("SIDECAR_DOCKER_RESYNC", None)
                .ok()
                .flatten()
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_sidecar() {
        let c = DiscoveryConfig::load(&Env::default(), &[]).expect("valid");
        assert_eq!(c.methods, [Method::Docker]);
        assert_eq!(c.static_file, PathBuf::from("static.json"));
        assert_eq!(c.docker, DockerEndpoint::Defaults);
        assert_eq!(c.static_max_bytes, DEFAULT_STATIC_MAX_BYTES);
        let small = Env::from_pairs([("SIDECAR_STATIC_MAX_BYTES", "4096")]);
        let c = DiscoveryConfig::load(&small, &[]).expect("valid");
        assert_eq!(c.static_max_bytes, 4096);
        for bad in ["0", "-1", "lots"] {
            let env = Env::from_pairs([("SIDECAR_STATIC_MAX_BYTES", bad)]);
            assert!(DiscoveryConfig::load(&env, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_replace_the_environment_and_unknown_values_are_kept_for_a_warning() {
        let env = Env::from_pairs([
            ("SIDECAR_DISCOVERY", "static,kubernetes_api,static"),
            ("DOCKER_URL", "tcp://127.0.0.1:2375"),
        ]);
        let c = DiscoveryConfig::load(&env, &[]).expect("valid");
        assert_eq!(c.methods, [Method::Static]);
        assert_eq!(c.unknown, ["kubernetes_api"]);
        assert_eq!(c.docker, DockerEndpoint::Url("tcp://127.0.0.1:2375".into()));
        let c = DiscoveryConfig::load(&env, &["docker".into(), "static".into()]).expect("valid");
        assert_eq!(c.methods, [Method::Docker, Method::Static]);
        let c = DiscoveryConfig::load(&Env::from_pairs([("SIDECAR_DISCOVERY", "")]), &[])
            .expect("valid");
        assert!(c.methods.is_empty(), "empty = passive");
    }
}
