//! What the plugin host gets from the environment: the plugins.toml path, Sidecar's
//! namer variables, the compiled-plugin cache directory and the grant placeholders.

use super::env::Env;
use sidecar_plugin_host::{
    CacheSetting, LoadOptions, NamerVars, PluginsConfig, PluginsConfigError,
};
use std::path::{Path, PathBuf};

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
        setup.require_emitters(&crate::proxy::ProxyConfig::load(&Env::from_process())?)?;
        Ok(setup)
    }

    /// The proxy drivers' emitters are plugins too: one load serves both.
    pub fn require_emitters(&mut self, proxy: &crate::proxy::ProxyConfig) -> anyhow::Result<()> {
        for (name, settings) in proxy.emitters()? {
            self.config.require_emitter(&name, settings);
        }
        Ok(())
    }
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
    fn namer_variables_reach_the_plugin_host_typed() {
        let env = Env::from_pairs([("SERVICES_NAMER", "regex"), ("SERVICES_NAME_MATCH", "^x")]);
        let vars = namer_vars(&env);
        assert_eq!(vars.services_namer.as_deref(), Some("regex"));
        assert_eq!(vars.name_match.as_deref(), Some("^x"));
        assert_eq!(vars.name_label, None);
    }
}
