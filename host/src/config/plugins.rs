//! What the plugin host gets from the environment: the plugins.toml path, Sidecar's
//! namer variables, the compiled-plugin cache directory, the grant placeholders, and
//! the `discovery-kubernetes` plugin's configuration from Sidecar's `K8S_*` variables.

use super::env::Env;
use crate::discovery::{DiscoveryConfig, KUBERNETES_PLUGIN, KubernetesApi, Method};
use sidecar_plugin_host::grants::HostPattern;
use sidecar_plugin_host::{
    CacheSetting, LoadOptions, NamerVars, PluginDefaults, PluginsConfig, PluginsConfigError,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// plugins.toml (or the embedded defaults) and the options to load it with.
#[derive(Debug, Clone)]
pub struct PluginsSetup {
    pub config: PluginsConfig,
    pub options: LoadOptions,
}

impl PluginsSetup {
    /// `file` (a flag) wins over `SIDECAR_PLUGINS_FILE`; without either the embedded
    /// defaults apply. `advertise_ip` and `hostname` fill the grant placeholders.
    pub fn load(
        env: &Env,
        file: Option<&Path>,
        advertise_ip: Option<String>,
        hostname: String,
    ) -> Result<Self, PluginsConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.non_empty("SIDECAR_PLUGINS_FILE", None)
                .map(PathBuf::from)
        });
        let config = PluginsConfig::load(file.as_deref(), &namer_vars(env))?;
        Ok(PluginsSetup {
            config,
            options: LoadOptions {
                advertise_ip,
                hostname: Some(hostname),
                cache: cache_setting(env),
                ..LoadOptions::default()
            },
        })
    }
}

impl PluginsSetup {
    /// What `sidecar plugins ...` uses: the daemon's settings from the process
    /// environment (`SIDECAR_NODE_NAME`, ...). The advertise IP (which `{{ host }}` and
    /// `{advertise_ip}` grants stand for) is `advertise_ip`, else the daemon's: configured
    /// or detected the same way.
    pub fn from_process(file: Option<&Path>, advertise_ip: Option<String>) -> anyhow::Result<Self> {
        let env = Env::from_process();
        let hostname = env
            .non_empty("SIDECAR_NODE_NAME", None)
            .unwrap_or_else(super::agent::system_hostname);
        let advertise_ip = match super::advertise::resolve(&env, advertise_ip.clone()) {
            Ok((ip, _)) => Some(ip.to_string()),
            // Nothing configured and nothing detected: checks get 127.0.0.1.
            Err(_) if advertise_ip.is_none() => None,
            Err(e) => return Err(e.into()),
        };
        Ok(PluginsSetup::load(&env, file, advertise_ip, hostname)?)
    }

    /// What `sidecar plugins list` shows: the plugins as the agent loads them, the
    /// emitters of the proxy drivers the environment enables included.
    pub fn as_agent_from_process(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut setup = PluginsSetup::from_process(file, None)?;
        let env = Env::from_process();
        setup.require_emitters(&crate::proxy::ProxyConfig::load(&env)?)?;
        let node_name = setup.options.hostname.clone().unwrap_or_default();
        setup.apply_discovery(&DiscoveryConfig::load(&env, &[])?, &node_name)?;
        Ok(setup)
    }

    /// `SIDECAR_DISCOVERY=kubernetes_api` runs the `discovery-kubernetes` plugin; when
    /// it runs (asked for there or in plugins.toml) the `K8S_*` variables fill in the
    /// settings, grants and call timeout the file leaves unset.
    pub fn apply_discovery(
        &mut self,
        discovery: &DiscoveryConfig,
        node_name: &str,
    ) -> anyhow::Result<()> {
        if discovery.uses(Method::KubernetesApi) {
            self.config.require_discovery(KUBERNETES_PLUGIN);
        }
        if self.config.uses_discovery(KUBERNETES_PLUGIN) {
            self.config.fill_defaults(
                KUBERNETES_PLUGIN,
                kubernetes_defaults(&discovery.kubernetes, node_name)?,
            );
        }
        Ok(())
    }

    /// The proxy drivers' emitters are plugins too: one load serves both.
    pub fn require_emitters(&mut self, proxy: &crate::proxy::ProxyConfig) -> anyhow::Result<()> {
        for (name, settings) in proxy.emitters()? {
            self.config.require_emitter(&name, settings);
        }
        Ok(())
    }
}

/// The Kubernetes plugin as Sidecar's variables describe it: `https` only on port 443,
/// the API server alone in the `http` grant, the token and CA from `creds_path`, and a
/// call budget for its three requests.
fn kubernetes_defaults(k: &KubernetesApi, node_name: &str) -> anyhow::Result<PluginDefaults> {
    let host = if k.api_ip.contains(':') && !k.api_ip.starts_with('[') {
        format!("[{}]", k.api_ip)
    } else {
        k.api_ip.clone()
    };
    let scheme = if k.api_port == 443 { "https" } else { "http" };
    let pattern = HostPattern::parse(&format!("{host}:{}", k.api_port))
        .map_err(|e| anyhow::anyhow!("K8S_KUBE_API_IP={:?}: {e}", k.api_ip))?;
    let timeout_ms = k.timeout.as_millis().min(u128::from(u32::MAX));
    Ok(PluginDefaults {
        settings: vec![
            (
                "api_url".into(),
                format!("{scheme}://{host}:{}", k.api_port),
            ),
            ("node_name".into(), node_name.to_string()),
            ("namespace".into(), k.namespace.clone()),
            ("timeout_ms".into(), timeout_ms.to_string()),
        ],
        http: Some(vec![pattern]),
        ca_file: Some(k.creds_path.join("ca.crt")),
        bearer_token_file: Some(k.creds_path.join("token")),
        timeout: Some((k.timeout * 4 + Duration::from_secs(1)).max(Duration::from_secs(10))),
    })
}

/// Sidecar's `SERVICES_NAMER`, `SERVICES_NAME_LABEL` and `SERVICES_NAME_MATCH`.
pub fn namer_vars(env: &Env) -> NamerVars {
    NamerVars {
        services_namer: env.string("SERVICES_NAMER", None),
        name_label: env.string("SERVICES_NAME_LABEL", None),
        name_match: env.string("SERVICES_NAME_MATCH", None),
    }
}

/// Where compiled plugins are cached: `SIDECAR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/sidecar`, else `$HOME/.cache/sidecar`, else a system default.
pub fn cache_setting(env: &Env) -> CacheSetting {
    cache_dir(env).map_or(CacheSetting::Disabled, CacheSetting::Dir)
}

fn cache_dir(env: &Env) -> Option<PathBuf> {
    if let Some(d) = env.non_empty("SIDECAR_CACHE_DIR", None) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = env.non_empty("XDG_CACHE_HOME", None) {
        return Some(Path::new(&d).join("sidecar"));
    }
    env.non_empty("HOME", None)
        .map(|h| Path::new(&h).join(".cache").join("sidecar"))
        .or_else(system_cache_dir)
}

/// Without `HOME` (a system service, `env -i`): root's cache lives in
/// `/var/cache/sidecar`, anyone else's in the home directory from the password database.
/// Compiling every plugin at every start instead costs a few hundred milliseconds and
/// several megabytes of resident memory that Cranelift leaves behind.
fn system_cache_dir() -> Option<PathBuf> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return Some(PathBuf::from("/var/cache/sidecar"));
    }
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.dir.join(".cache").join("sidecar"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_directory_precedence() {
        let env = Env::from_pairs([
            ("SIDECAR_CACHE_DIR", "/a"),
            ("XDG_CACHE_HOME", "/b"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_dir(&env), Some(PathBuf::from("/a")));
        let env = Env::from_pairs([("XDG_CACHE_HOME", "/b"), ("HOME", "/h")]);
        assert_eq!(cache_dir(&env), Some(PathBuf::from("/b/sidecar")));
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(cache_dir(&env), Some(PathBuf::from("/h/.cache/sidecar")));
        // Without HOME: root (as the tests run here) uses /var/cache/sidecar.
        let expected = if nix::unistd::geteuid().is_root() {
            Some(PathBuf::from("/var/cache/sidecar"))
        } else {
            system_cache_dir()
        };
        assert_eq!(cache_dir(&Env::default()), expected);
    }

    #[test]
    fn kubernetes_api_runs_the_plugin_with_sidecars_variables() {
        let env = Env::from_pairs([
            ("SIDECAR_DISCOVERY", "kubernetes_api,static"),
            ("KUBE_API_IP", "10.96.0.1"),
            ("KUBE_API_PORT", "443"),
            ("K8S_CREDS_PATH", "/creds"),
        ]);
        let discovery = DiscoveryConfig::load(&env, &[]).expect("valid");
        let mut setup = PluginsSetup::load(&env, None, None, "node-1".into()).expect("valid");
        setup
            .apply_discovery(&discovery, "node-1")
            .expect("applies");
        assert!(setup.config.uses_discovery(KUBERNETES_PLUGIN));
        let p = setup.config.plugin(KUBERNETES_PLUGIN);
        let setting = |k: &str| {
            p.settings
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(setting("api_url").as_deref(), Some("https://10.96.0.1:443"));
        assert_eq!(setting("node_name").as_deref(), Some("node-1"));
        assert_eq!(setting("namespace").as_deref(), Some("default"));
        assert_eq!(setting("timeout_ms").as_deref(), Some("3000"));
        let http: Vec<String> = p.http.iter().flatten().map(ToString::to_string).collect();
        assert_eq!(http, ["10.96.0.1:443"]);
        assert_eq!(p.ca_file, Some(PathBuf::from("/creds/ca.crt")));
        assert_eq!(p.bearer_token_file, Some(PathBuf::from("/creds/token")));

        // Not asked for: nothing runs.
        let env = Env::from_pairs([("SIDECAR_DISCOVERY", "static")]);
        let discovery = DiscoveryConfig::load(&env, &[]).expect("valid");
        let mut setup = PluginsSetup::load(&env, None, None, "node-1".into()).expect("valid");
        setup
            .apply_discovery(&discovery, "node-1")
            .expect("applies");
        assert!(!setup.config.uses_discovery(KUBERNETES_PLUGIN));
        assert!(setup.config.plugins.is_empty());
    }

    #[test]
    fn namer_variables_reach_the_plugin_host_typed() {
        let env = Env::from_pairs([("SERVICES_NAMER", "regex"), ("SERVICES_NAME_MATCH", "^x")]);
        let vars = namer_vars(&env);
        assert_eq!(vars.services_namer.as_deref(), Some("regex"));
        assert_eq!(vars.name_match.as_deref(), Some("^x"));
        assert_eq!(vars.name_label, None);
    }
}
