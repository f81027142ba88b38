//! Discovery settings: `SIDECAR_DISCOVERY` / `--discover`, `STATIC_CONFIG_FILE`,
//! `DOCKER_URL`, `SERVICES_NAMER`.
//!
//! Bare-name fallbacks (`DISCOVERY`, `CONFIG_FILE`, `URL`, `NAMER`) are not honoured:
//! `CONFIG_FILE` is shared with HAProxy's group and `URL` is too generic to be safe.

use crate::config::Env;
use std::path::PathBuf;

/// A built-in discovery method. Plugin sources come from plugins.toml instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Docker,
    Static,
}

/// Where to reach Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    /// `DOCKER_URL`: `unix:///path`, `tcp://host:port` or `http://host:port`.
    Url(String),
    /// `DOCKER_URL` unset or empty: the standard `DOCKER_HOST` variables, which default
    /// to `/var/run/docker.sock`.
    Defaults,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// In configuration order; duplicates removed.
    pub methods: Vec<Method>,
    pub static_file: PathBuf,
    pub docker: DockerEndpoint,
    /// Values of `SIDECAR_DISCOVERY` that name no method (warned at startup).
    pub unknown: Vec<String>,
}

impl DiscoveryConfig {
    /// `flags` (repeated `--discover`) replace `SIDECAR_DISCOVERY` when given.
    pub fn load(env: &Env, flags: &[String]) -> Self {
        let names: Vec<String> = if flags.is_empty() {
            env.list("SIDECAR_DISCOVERY", None)
                .unwrap_or_else(|| vec!["docker".to_string()])
        } else {
            flags
                .iter()
                .flat_map(|f| crate::config::env::split_list(f))
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
        DiscoveryConfig {
            methods,
            static_file: env
                .non_empty("STATIC_CONFIG_FILE", None)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("static.json")),
            docker,
            unknown,
        }
    }

    pub fn uses(&self, m: Method) -> bool {
        self.methods.contains(&m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_sidecar() {
        let c = DiscoveryConfig::load(&Env::default(), &[]);
        assert_eq!(c.methods, [Method::Docker]);
        assert_eq!(c.static_file, PathBuf::from("static.json"));
        assert_eq!(c.docker, DockerEndpoint::Defaults);
    }

    #[test]
    fn flags_replace_the_environment_and_unknown_values_are_kept_for_a_warning() {
        let env = Env::from_pairs([
            ("SIDECAR_DISCOVERY", "static,kubernetes_api,static"),
            ("DOCKER_URL", "tcp://127.0.0.1:2375"),
        ]);
        let c = DiscoveryConfig::load(&env, &[]);
        assert_eq!(c.methods, [Method::Static]);
        assert_eq!(c.unknown, ["kubernetes_api"]);
        assert_eq!(c.docker, DockerEndpoint::Url("tcp://127.0.0.1:2375".into()));
        let c = DiscoveryConfig::load(&env, &["docker".into(), "static".into()]);
        assert_eq!(c.methods, [Method::Docker, Method::Static]);
        let c = DiscoveryConfig::load(&Env::from_pairs([("SIDECAR_DISCOVERY", "")]), &[]);
        assert!(c.methods.is_empty(), "empty = passive");
    }
}
