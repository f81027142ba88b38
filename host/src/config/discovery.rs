//! Discovery settings: `SIDECAR_DISCOVERY` / `--discover`, `STATIC_CONFIG_FILE`,
//! `SIDECAR_STATIC_MAX_BYTES`, `SIDECAR_CONNECT_PORT_RANGE`, `DOCKER_URL`, `SIDECAR_DOCKER_RESYNC`, and Sidecar's
//! `K8S_*` variables for `kubernetes_api`.
//!
//! Bare-name fallbacks (`DISCOVERY`, `CONFIG_FILE`, `URL`, `NAMER`) are not honoured:
//! `CONFIG_FILE` is shared with HAProxy's group and `URL` is too generic to be safe.
//! The `K8S_*` ones (`KUBE_API_IP`, `NAMESPACE`, ...) are, as Sidecar's Kubernetes
//! manifests set them; they only matter when the Kubernetes plugin runs.

use super::agent::ConfigError;
use super::env::Env;
use crate::discovery::docker::DockerConfig;
use crate::discovery::{DiscoveryConfig, DockerEndpoint, KubernetesApi, Method};
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
                "kubernetes_api" => Method::KubernetesApi,
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
        let connect_ports = match env.non_empty("SIDECAR_CONNECT_PORT_RANGE", None) {
            None => crate::discovery::connect::DEFAULT_PORTS,
            Some(text) => port_range(&text).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "SIDECAR_CONNECT_PORT_RANGE={text:?}: expected FIRST-LAST, two ports with FIRST <= LAST"
                ))
            })?,
        };
        Ok(DiscoveryConfig {
            connect_ports,
            methods,
            static_file: env
                .non_empty("STATIC_CONFIG_FILE", None)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("static.json")),
            static_max_bytes,
            docker,
            unknown,
            kubernetes: KubernetesApi::load(env)?,
        })
    }
}

/// `21000-21255` (one port alone is a range of one).
fn port_range(text: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a > 0 && a <= b).then_some(a..=b)
}

impl KubernetesApi {
    /// `K8S_<NAME>`, else Sidecar's bare `<NAME>`, with Sidecar's defaults.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let api_port = env
            .int::<u16>("K8S_KUBE_API_PORT", Some("KUBE_API_PORT"))?
            .unwrap_or(8080);
        if api_port == 0 {
            return Err(ConfigError::Invalid(
                "K8S_KUBE_API_PORT must be a port (1-65535)".into(),
            ));
        }
        let timeout = env
            .duration("K8S_KUBE_TIMEOUT", Some("KUBE_TIMEOUT"))?
            .unwrap_or(Duration::from_secs(3));
        if timeout.is_zero() || timeout > Duration::from_secs(600) {
            return Err(ConfigError::Invalid(
                "K8S_KUBE_TIMEOUT must be between 1ms and 10m".into(),
            ));
        }
        Ok(KubernetesApi {
            api_ip: env
                .non_empty("K8S_KUBE_API_IP", Some("KUBE_API_IP"))
                .unwrap_or_else(|| "127.0.0.1".into()),
            api_port,
            namespace: env
                .non_empty("K8S_NAMESPACE", Some("NAMESPACE"))
                .unwrap_or_else(|| "default".into()),
            timeout,
            creds_path: env
                .non_empty("K8S_CREDS_PATH", Some("CREDS_PATH"))
                .map_or_else(
                    || PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount"),
                    PathBuf::from,
                ),
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
    fn the_sidecar_proxy_port_range() {
        let c = DiscoveryConfig::load(&Env::default(), &[]).expect("valid");
        assert_eq!(c.connect_ports, 21000..=21255, "Consul's default");
        for (text, want) in [("30000-30010", 30000..=30010), ("31000", 31000..=31000)] {
            let env = Env::from_pairs([("SIDECAR_CONNECT_PORT_RANGE", text)]);
            let c = DiscoveryConfig::load(&env, &[]).expect(text);
            assert_eq!(c.connect_ports, want);
        }
        for bad in ["2-1", "0-5", "1-70000", "a-b"] {
            let env = Env::from_pairs([("SIDECAR_CONNECT_PORT_RANGE", bad)]);
            assert!(DiscoveryConfig::load(&env, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_replace_the_environment_and_unknown_values_are_kept_for_a_warning() {
        let env = Env::from_pairs([
            ("SIDECAR_DISCOVERY", "static,consul,static"),
            ("DOCKER_URL", "tcp://127.0.0.1:2375"),
        ]);
        let c = DiscoveryConfig::load(&env, &[]).expect("valid");
        assert_eq!(c.methods, [Method::Static]);
        assert_eq!(c.unknown, ["consul"]);
        assert_eq!(c.docker, DockerEndpoint::Url("tcp://127.0.0.1:2375".into()));
        let c = DiscoveryConfig::load(&env, &["docker".into(), "static".into()]).expect("valid");
        assert_eq!(c.methods, [Method::Docker, Method::Static]);
        let c = DiscoveryConfig::load(&Env::from_pairs([("SIDECAR_DISCOVERY", "")]), &[])
            .expect("valid");
        assert!(c.methods.is_empty(), "empty = passive");
    }

    #[test]
    fn kubernetes_variables_follow_sidecar() {
        let c = DiscoveryConfig::load(&Env::default(), &["kubernetes_api".into()]).expect("valid");
        assert_eq!(c.methods, [Method::KubernetesApi]);
        let k = &c.kubernetes;
        assert_eq!((k.api_ip.as_str(), k.api_port), ("127.0.0.1", 8080));
        assert_eq!(k.namespace, "default");
        assert_eq!(k.timeout, Duration::from_secs(3));
        assert_eq!(
            k.creds_path,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount")
        );
        let env = Env::from_pairs([
            ("K8S_KUBE_API_IP", "10.96.0.1"),
            ("KUBE_API_IP", "ignored"),
            ("KUBE_API_PORT", "443"),
            ("NAMESPACE", "apps"),
            ("K8S_KUBE_TIMEOUT", "500ms"),
            ("CREDS_PATH", "/creds"),
        ]);
        let k = KubernetesApi::load(&env).expect("valid");
        assert_eq!((k.api_ip.as_str(), k.api_port), ("10.96.0.1", 443));
        assert_eq!(k.namespace, "apps");
        assert_eq!(k.timeout, Duration::from_millis(500));
        assert_eq!(k.creds_path, PathBuf::from("/creds"));
        for bad in [
            ("K8S_KUBE_API_PORT", "0"),
            ("KUBE_API_PORT", "http"),
            ("K8S_KUBE_TIMEOUT", "0s"),
        ] {
            assert!(
                KubernetesApi::load(&Env::from_pairs([bad])).is_err(),
                "{bad:?}"
            );
        }
    }
}
