//! plugins.toml: which plugin does what, and what each plugin may do.
//!
//! ```toml
//! namer = "namer-regex"                     # default: namer-label
//! emitters = ["proxy-haproxy"]              # proxy config emitters by name
//!
//! [checks]                                  # check type -> plugin (adds to the defaults)
//! JsonStatus = "json-status"
//!
//! [[discovery]]                             # discovery-source plugins
//! plugin = "inventory"
//! interval = "10s"                          # default 5s
//!
//! [plugins.json-status]                     # one table per plugin to add or adjust
//! wasm = "json_status.wasm"                 # relative to this file; omit for a built-in
//! kind = "health-check"                     # optional; checked against the component
//! settings = { path = "/health" }           # passed to `configure`
//! grants = { http = ["127.0.0.1:*", "{advertise_ip}:*"], exec = false }
//! # also: ca_file = "ca.crt", bearer_token_file = "token" (read by the host; WIT 0.1.2)
//! limits = { memory_mb = 128, timeout = "5s", instances = 8 }
//! ```
//!
//! Without a file the embedded defaults apply, and Sidecar's `SERVICES_NAMER`,
//! `SERVICES_NAME_LABEL` and `SERVICES_NAME_MATCH` choose and configure the namer (they
//! are also honoured with a file that does not set `namer`). Every error — syntax,
//! unknown key, unknown plugin, bad kind, missing `.wasm` — names the file and line.
//! The full reference is docs/plugins.md.

use crate::grants::HostPattern;
use crate::limits::{MAX_INSTANCES, MAX_MEMORY_MB};
use crate::{Kind, embedded};
use serde::Deserialize;
use sidecar_catalog::parse_go_duration;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Interval of a discovery source without `interval`.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// Where in plugins.toml something was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A bad plugins.toml (or bad `SERVICES_*` variables). Displays as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PluginsConfigError {
    pub at: Option<Location>,
    pub message: String,
}

impl fmt::Display for PluginsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A use of a plugin (`namer = …`, a `[checks]` entry, …) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    pub plugin: String,
    /// None for defaults and environment variables.
    pub at: Option<Location>,
}

impl PluginRef {
    fn default_for(plugin: &str) -> PluginRef {
        PluginRef {
            plugin: plugin.to_string(),
            at: None,
        }
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    Embedded,
    File(PathBuf),
}

/// The `[plugins.<name>]` table of one plugin (empty for an untouched built-in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginSettings {
    /// None = the embedded plugin of that name.
    pub wasm: Option<PathBuf>,
    pub kind: Option<Kind>,
    pub settings: Vec<(String, String)>,
    /// None = the plugin's default grant (built-ins) or nothing.
    pub http: Option<Vec<HostPattern>>,
    pub exec: Option<bool>,
    /// None = the plugin's default `net` grant (built-ins) or nothing.
    pub net: Option<Vec<HostPattern>>,
    /// `grants.ca_file`: extra HTTPS roots (PEM), relative paths anchored at the file.
    pub ca_file: Option<PathBuf>,
    /// `grants.bearer_token_file`: the token `http.get-with-bearer-token` sends.
    pub bearer_token_file: Option<PathBuf>,
    pub memory_mb: Option<u64>,
    pub timeout: Option<Duration>,
    pub instances: Option<u32>,
    /// The `[plugins.<name>]` header.
    pub at: Option<Location>,
}

impl PluginSettings {
    pub fn source(&self) -> PluginSource {
        match &self.wasm {
            Some(p) => PluginSource::File(p.clone()),
            None => PluginSource::Embedded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub plugin: PluginRef,
    pub interval: Duration,
}

/// The resolved plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginsConfig {
    /// The file it came from; None = embedded defaults.
    pub file: Option<PathBuf>,
    pub namer: PluginRef,
    /// Check type -> plugin; always contains `HttpGet`, `External`, `AlwaysSuccessful`.
    pub checks: BTreeMap<String, PluginRef>,
    pub discovery: Vec<DiscoveryConfig>,
    pub emitters: Vec<PluginRef>,
    /// Every plugin the file defines or adjusts, plus the namer's env-derived settings.
    pub plugins: BTreeMap<String, PluginSettings>,
}

impl PluginsConfig {
    /// The configuration: the file at `path`, else the embedded defaults; Sidecar's
    /// namer variables apply where the file does not set `namer`.
    pub fn load(path: Option<&Path>, env: &NamerVars) -> Result<PluginsConfig, PluginsConfigError> {
        match path.map(Path::to_path_buf) {
            None => PluginsConfig::defaults(env),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| PluginsConfigError {
                    at: None,
                    message: format!("cannot read plugins file {}: {e}", path.display()),
                })?;
                PluginsConfig::parse(&text, &path, env)
            }
        }
    }

    /// The embedded defaults (plus `SERVICES_*`).
    pub fn defaults(env: &NamerVars) -> Result<PluginsConfig, PluginsConfigError> {
        let mut config = PluginsConfig {
            file: None,
            namer: PluginRef::default_for(embedded::DEFAULT_NAMER),
            checks: embedded::DEFAULT_CHECKS
                .iter()
                .map(|(t, p)| (t.to_string(), PluginRef::default_for(p)))
                .collect(),
            discovery: Vec::new(),
            emitters: Vec::new(),
            plugins: BTreeMap::new(),
        };
        config.apply_namer_env(env)?;
        Ok(config)
    }

    /// Parses plugins.toml text; `path` names it in errors and anchors relative paths.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &NamerVars,
    ) -> Result<PluginsConfig, PluginsConfigError> {
        let file = Parser { path, text };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| file.error(e.span(), e.message().to_string()))?;
        file.resolve(raw, env)
    }

    /// Makes sure emitter `name` is loaded (the proxy drivers ask for the emitters they
    /// need) and adds settings the host supplies; these override same-named keys from
    /// the file.
    pub fn require_emitter(&mut self, name: &str, host_settings: Vec<(String, String)>) {
        if !self.emitters.iter().any(|e| e.plugin == name) {
            self.emitters.push(PluginRef::default_for(name));
        }
        let entry = self.plugins.entry(name.to_string()).or_default();
        for (key, value) in host_settings {
            entry.settings.retain(|(k, _)| *k != key);
            entry.settings.push((key, value));
        }
    }

    /// Makes sure discovery source `name` runs (`SIDECAR_DISCOVERY` names a built-in
    /// source that is a plugin); an entry in the file, with its interval, wins.
    pub fn require_discovery(&mut self, name: &str) {
        if !self.uses_discovery(name) {
            self.discovery.push(DiscoveryConfig {
                plugin: PluginRef::default_for(name),
                interval: DEFAULT_DISCOVERY_INTERVAL,
            });
        }
    }

    /// Whether discovery source `name` is in use.
    pub fn uses_discovery(&self, name: &str) -> bool {
        self.discovery.iter().any(|d| d.plugin.plugin == name)
    }

    /// Fills in what the file leaves unset for plugin `name` (Sidecar's environment
    /// variables for a built-in): each setting key, grant and limit separately.
    pub fn fill_defaults(&mut self, name: &str, defaults: PluginDefaults) {
        let entry = self.plugins.entry(name.to_string()).or_default();
        for (key, value) in defaults.settings {
            if !entry.settings.iter().any(|(k, _)| *k == key) {
                entry.settings.push((key, value));
            }
        }
        if entry.http.is_none() {
            entry.http = defaults.http;
        }
        if entry.ca_file.is_none() {
            entry.ca_file = defaults.ca_file;
        }
        if entry.bearer_token_file.is_none() {
            entry.bearer_token_file = defaults.bearer_token_file;
        }
        if entry.timeout.is_none() {
            entry.timeout = defaults.timeout;
        }
    }

    /// The settings table of `name` (empty if the file does not mention it).
    pub fn plugin(&self, name: &str) -> PluginSettings {
        self.plugins.get(name).cloned().unwrap_or_default()
    }

    /// Sidecar's namer variables, used when the file does not choose a namer.
    fn apply_namer_env(&mut self, env: &NamerVars) -> Result<(), PluginsConfigError> {
        let env_error = |name: &str, value: &str, why: &str| PluginsConfigError {
            at: None,
            message: format!("{name}={value:?}: {why}"),
        };
        let namer = env.services_namer.clone();
        let (plugin, key, value) = match namer.as_deref() {
            None | Some("docker_label") => ("namer-label", "label", &env.name_label),
            Some("regex") => ("namer-regex", "pattern", &env.name_match),
            Some(other) => {
                return Err(env_error(
                    "SERVICES_NAMER",
                    other,
                    "unknown namer (docker_label, regex)",
                ));
            }
        };
        if namer.is_some() {
            self.namer = PluginRef::default_for(plugin);
        }
        if self.namer.plugin != plugin {
            return Ok(());
        }
        let value = value.clone();
        // SERVICES_NAME_MATCH is required for `regex` (Sidecar compiled the empty default
        // and then crashed on the first container); the plugin rejects a missing pattern.
        if let Some(value) = value.filter(|v| !v.is_empty() || key == "pattern") {
            let entry = self.plugins.entry(plugin.to_string()).or_default();
            if !entry.settings.iter().any(|(k, _)| k == key) {
                entry.settings.push((key.to_string(), value));
            }
        }
        Ok(())
    }
}

/// Settings, grants and a call timeout for a plugin from outside plugins.toml; see
/// [`PluginsConfig::fill_defaults`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginDefaults {
    pub settings: Vec<(String, String)>,
    pub http: Option<Vec<HostPattern>>,
    pub ca_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// Sidecar's namer variables (`SERVICES_NAMER`, `SERVICES_NAME_LABEL`,
/// `SERVICES_NAME_MATCH`), as the daemon's configuration module read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamerVars {
    /// `docker_label` or `regex`.
    pub services_namer: Option<String>,
    pub name_label: Option<String>,
    pub name_match: Option<String>,
}

// ---- raw TOML shape -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    namer: Option<Spanned<String>>,
    #[serde(default)]
    checks: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    discovery: Vec<Spanned<RawDiscovery>>,
    #[serde(default)]
    emitters: Vec<Spanned<String>>,
    #[serde(default)]
    plugins: BTreeMap<String, Spanned<RawPlugin>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    plugin: Spanned<String>,
    interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    wasm: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    #[serde(default)]
    settings: BTreeMap<String, Spanned<toml::Value>>,
    grants: Option<RawGrants>,
    limits: Option<RawLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    http: Option<Vec<Spanned<String>>>,
    exec: Option<bool>,
    net: Option<Vec<Spanned<String>>>,
    ca_file: Option<Spanned<String>>,
    bearer_token_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    instances: Option<Spanned<i64>>,
}

struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Parser<'_> {
    fn location(&self, span: Option<Range<usize>>) -> Option<Location> {
        let span = span?;
        let before = &self.text[..span.start.min(self.text.len())];
        Some(Location {
            file: self.path.to_path_buf(),
            line: before.matches('\n').count() + 1,
        })
    }

    fn error(&self, span: Option<Range<usize>>, message: String) -> PluginsConfigError {
        let at = self.location(span).or(Some(Location {
            file: self.path.to_path_buf(),
            line: 1,
        }));
        PluginsConfigError { at, message }
    }

    fn at<T>(&self, s: &Spanned<T>) -> Option<Location> {
        self.location(Some(s.span()))
    }

    fn resolve(&self, raw: RawFile, env: &NamerVars) -> Result<PluginsConfig, PluginsConfigError> {
        let mut plugins = BTreeMap::new();
        for (name, table) in &raw.plugins {
            plugins.insert(name.clone(), self.plugin(name, table)?);
        }
        let known = |name: &str| embedded::is_embedded(name) || plugins.contains_key(name);
        let reference = |s: &Spanned<String>,
                         role: &str|
         -> Result<PluginRef, PluginsConfigError> {
            let name = s.get_ref();
            if !known(name) {
                let builtin: Vec<&str> = embedded::names().collect();
                return Err(self.error(
                    Some(s.span()),
                    format!(
                        "{role}: unknown plugin `{name}` (built in: {}; add a [plugins.{name}] table with `wasm = \"…\"` for your own)",
                        builtin.join(", ")
                    ),
                ));
            }
            Ok(PluginRef {
                plugin: name.clone(),
                at: self.at(s),
            })
        };

        let namer = raw
            .namer
            .as_ref()
            .map(|n| reference(n, "namer"))
            .transpose()?;
        let mut checks: BTreeMap<String, PluginRef> = embedded::DEFAULT_CHECKS
            .iter()
            .map(|(t, p)| (t.to_string(), PluginRef::default_for(p)))
            .collect();
        for (check_type, plugin) in &raw.checks {
            if check_type.trim().is_empty() {
                return Err(self.error(
                    Some(plugin.span()),
                    "[checks]: empty check type name".into(),
                ));
            }
            checks.insert(
                check_type.clone(),
                reference(plugin, &format!("check type `{check_type}`"))?,
            );
        }
        let mut discovery = Vec::new();
        let mut seen = BTreeSet::new();
        for entry in &raw.discovery {
            let d = entry.get_ref();
            let plugin = reference(&d.plugin, "[[discovery]]")?;
            if !seen.insert(plugin.plugin.clone()) {
                return Err(self.error(
                    Some(d.plugin.span()),
                    format!("[[discovery]]: `{}` is listed twice", plugin.plugin),
                ));
            }
            let interval = match &d.interval {
                None => DEFAULT_DISCOVERY_INTERVAL,
                Some(i) => self.duration(i, "interval")?,
            };
            discovery.push(DiscoveryConfig { plugin, interval });
        }
        let mut emitters = Vec::new();
        let mut seen = BTreeSet::new();
        for e in &raw.emitters {
            let r = reference(e, "emitters")?;
            if !seen.insert(r.plugin.clone()) {
                return Err(self.error(
                    Some(e.span()),
                    format!("emitters: `{}` is listed twice", r.plugin),
                ));
            }
            emitters.push(r);
        }

        let mut config = PluginsConfig {
            file: Some(self.path.to_path_buf()),
            namer: namer
                .clone()
                .unwrap_or_else(|| PluginRef::default_for(embedded::DEFAULT_NAMER)),
            checks,
            discovery,
            emitters,
            plugins,
        };
        if namer.is_none() {
            config.apply_namer_env(env)?;
        }
        Ok(config)
    }

    fn plugin(
        &self,
        name: &str,
        table: &Spanned<RawPlugin>,
    ) -> Result<PluginSettings, PluginsConfigError> {
        let header = Some(table.span());
        let raw = table.get_ref();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(self.error(
                header,
                format!("plugin name `{name}`: use lowercase letters, digits, `-` and `_`"),
            ));
        }
        let wasm = match &raw.wasm {
            Some(w) => Some(self.wasm_path(w)?),
            None if embedded::is_embedded(name) => None,
            None => {
                return Err(self.error(
                    header,
                    format!("plugin `{name}` is not built in, so it needs `wasm = \"path/to/{name}.wasm\"`"),
                ));
            }
        };
        let kind = match &raw.kind {
            None => None,
            Some(k) => Some(Kind::parse(k.get_ref()).ok_or_else(|| {
                let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                self.error(
                    Some(k.span()),
                    format!(
                        "unknown kind `{}` (one of: {})",
                        k.get_ref(),
                        kinds.join(", ")
                    ),
                )
            })?),
        };
        let mut settings = Vec::new();
        for (key, value) in &raw.settings {
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(self.error(
                        Some(value.span()),
                        format!(
                            "setting `{key}`: a {} is not allowed (strings, numbers, booleans)",
                            other.type_str()
                        ),
                    ));
                }
            };
            settings.push((key.clone(), text));
        }
        let (mut http, mut exec, mut net) = (None, None, None);
        let (mut ca_file, mut bearer_token_file) = (None, None);
        if let Some(g) = &raw.grants {
            ca_file = g.ca_file.as_ref().map(|f| self.grant_path(f)).transpose()?;
            bearer_token_file = g
                .bearer_token_file
                .as_ref()
                .map(|f| self.grant_path(f))
                .transpose()?;
            if let Some(list) = &g.http {
                http = Some(self.patterns(list)?);
            }
            if let Some(list) = &g.net {
                net = Some(self.patterns(list)?);
            }
            exec = g.exec;
        }
        let (mut memory_mb, mut timeout, mut instances) = (None, None, None);
        if let Some(l) = &raw.limits {
            if let Some(m) = &l.memory_mb {
                let v = *m.get_ref();
                if !(1..=MAX_MEMORY_MB as i64).contains(&v) {
                    return Err(self.error(
                        Some(m.span()),
                        format!("memory_mb = {v}: must be 1..={MAX_MEMORY_MB}"),
                    ));
                }
                memory_mb = Some(v as u64);
            }
            if let Some(t) = &l.timeout {
                timeout = Some(self.duration(t, "timeout")?);
            }
            if let Some(i) = &l.instances {
                let v = *i.get_ref();
                if !(1..=MAX_INSTANCES as i64).contains(&v) {
                    return Err(self.error(
                        Some(i.span()),
                        format!("instances = {v}: must be 1..={MAX_INSTANCES}"),
                    ));
                }
                instances = Some(v as u32);
            }
        }
        Ok(PluginSettings {
            wasm,
            kind,
            settings,
            http,
            exec,
            net,
            ca_file,
            bearer_token_file,
            memory_mb,
            timeout,
            instances,
            at: self.location(header),
        })
    }

    /// An allow-list (`grants.http`, `grants.net`), each pattern parsed.
    fn patterns(&self, list: &[Spanned<String>]) -> Result<Vec<HostPattern>, PluginsConfigError> {
        list.iter()
            .map(|p| HostPattern::parse(p.get_ref()).map_err(|e| self.error(Some(p.span()), e)))
            .collect()
    }

    fn wasm_path(&self, w: &Spanned<String>) -> Result<PathBuf, PluginsConfigError> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let path = base.join(w.get_ref());
        if !path.is_file() {
            return Err(self.error(
                Some(w.span()),
                format!("wasm file not found: {}", path.display()),
            ));
        }
        Ok(path)
    }

    /// A file the host reads for the plugin, relative to this file. Not checked here:
    /// it may appear, or be replaced, after the start (rotated secrets).
    fn grant_path(&self, f: &Spanned<String>) -> Result<PathBuf, PluginsConfigError> {
        if f.get_ref().trim().is_empty() {
            return Err(self.error(Some(f.span()), "empty file name".into()));
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        Ok(base.join(f.get_ref()))
    }

    fn duration(&self, s: &Spanned<String>, what: &str) -> Result<Duration, PluginsConfigError> {
        let d = parse_go_duration(s.get_ref())
            .map_err(|e| self.error(Some(s.span()), format!("{what}: {e}")))?;
        if d.is_zero() || d > Duration::from_secs(3600) {
            return Err(self.error(
                Some(s.span()),
                format!("{what}: must be between 1ns and 1h"),
            ));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PluginsConfig, PluginsConfigError> {
        PluginsConfig::parse(
            text,
            Path::new("/etc/sidecar/plugins.toml"),
            &NamerVars::default(),
        )
    }

    fn line_of(text: &str) -> (Option<usize>, String) {
        let e = parse(text).expect_err("should be rejected");
        (e.at.as_ref().map(|a| a.line), e.to_string())
    }

    #[test]
    fn defaults_without_a_file() {
        let c = PluginsConfig::defaults(&NamerVars::default()).expect("defaults");
        assert_eq!(c.namer.plugin, "namer-label");
        assert_eq!(c.checks["HttpGet"].plugin, "check-httpget");
        assert_eq!(c.checks["External"].plugin, "check-external");
        assert_eq!(c.checks["AlwaysSuccessful"].plugin, "check-always");
        assert!(c.plugins.is_empty() && c.discovery.is_empty() && c.emitters.is_empty());
    }

    #[test]
    fn sidecar_namer_variables() {
        let env = NamerVars {
            services_namer: Some("regex".into()),
            name_match: Some("^/(.+)-x$".into()),
            ..NamerVars::default()
        };
        let c = PluginsConfig::defaults(&env).expect("regex");
        assert_eq!(c.namer.plugin, "namer-regex");
        assert_eq!(
            c.plugin("namer-regex").settings,
            vec![("pattern".to_string(), "^/(.+)-x$".to_string())]
        );

        let env = NamerVars {
            name_label: Some("app".into()),
            ..NamerVars::default()
        };
        let c = PluginsConfig::defaults(&env).expect("label");
        assert_eq!(c.namer.plugin, "namer-label");
        assert_eq!(
            c.plugin("namer-label").settings,
            vec![("label".to_string(), "app".to_string())]
        );

        let e = PluginsConfig::defaults(&NamerVars {
            services_namer: Some("fancy".into()),
            ..NamerVars::default()
        })
        .expect_err("unknown");
        assert!(e.to_string().contains("SERVICES_NAMER=\"fancy\""), "{e}");

        // The file's choice wins over the environment.
        let env = NamerVars {
            services_namer: Some("regex".into()),
            ..NamerVars::default()
        };
        let c = PluginsConfig::parse("namer = \"namer-label\"\n", Path::new("p.toml"), &env)
            .expect("file wins");
        assert_eq!(c.namer.plugin, "namer-label");
    }

    #[test]
    fn a_full_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.wasm"), b"\0asm").expect("write");
        let text = r#"
namer = "namer-regex"
emitters = ["proxy-x"]

[checks]
JsonStatus = "json-status"
HttpGet = "json-status"

[[discovery]]
plugin = "inventory"
interval = "10s"

[plugins.namer-regex]
settings = { pattern = '^/(.+)$' }

[plugins.json-status]
wasm = "x.wasm"
kind = "health-check"
settings = { path = "/health", retries = 3, strict = true }
grants = { http = ["127.0.0.1:*", "{advertise_ip}:8080"] }
limits = { memory_mb = 128, timeout = "5s", instances = 4 }

[plugins.inventory]
wasm = "x.wasm"
grants.exec = true
grants.net = ["db.internal:5432"]
grants.ca_file = "k8s/ca.crt"
grants.bearer_token_file = "/run/token"

[plugins.proxy-x]
wasm = "x.wasm"
"#;
        let c = PluginsConfig::parse(
            text,
            &dir.path().join("plugins.toml"),
            &NamerVars::default(),
        )
        .expect("valid");
        assert_eq!(c.namer.plugin, "namer-regex");
        assert_eq!(c.namer.at.as_ref().map(|a| a.line), Some(2));
        assert_eq!(c.checks["HttpGet"].plugin, "json-status");
        assert_eq!(c.checks["AlwaysSuccessful"].plugin, "check-always");
        assert_eq!(
            c.discovery,
            vec![DiscoveryConfig {
                plugin: PluginRef {
                    plugin: "inventory".into(),
                    at: c.discovery[0].plugin.at.clone()
                },
                interval: Duration::from_secs(10)
            }]
        );
        let js = c.plugin("json-status");
        assert_eq!(js.source(), PluginSource::File(dir.path().join("x.wasm")));
        assert_eq!(js.kind, Some(Kind::HealthCheck));
        assert_eq!(js.settings.len(), 3);
        assert!(
            js.settings
                .contains(&("retries".to_string(), "3".to_string()))
        );
        assert_eq!(js.http.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            (js.memory_mb, js.timeout, js.instances),
            (Some(128), Some(Duration::from_secs(5)), Some(4))
        );
        assert_eq!(c.plugin("inventory").exec, Some(true));
        assert_eq!(
            c.plugin("inventory")
                .net
                .map(|n| n.iter().map(ToString::to_string).collect::<Vec<_>>()),
            Some(vec!["db.internal:5432".to_string()])
        );
        assert_eq!(js.net, None, "no net grant unless given");
        let inventory = c.plugin("inventory");
        assert_eq!(inventory.ca_file, Some(dir.path().join("k8s/ca.crt")));
        assert_eq!(
            inventory.bearer_token_file.as_deref(),
            Some(Path::new("/run/token"))
        );
        assert_eq!(c.emitters[0].plugin, "proxy-x");
    }

    #[test]
    fn required_discovery_gets_defaults_where_the_file_is_silent() {
        let text = "[[discovery]]\nplugin = \"discovery-http\"\ninterval = \"9s\"\n[plugins.discovery-http]\nsettings = { url = \"file\" }\ngrants = { bearer_token_file = \"t\" }\n";
        let file = Path::new("/etc/sidecar/p.toml");
        let mut c = PluginsConfig::parse(text, file, &NamerVars::default()).expect("valid");
        c.require_discovery("discovery-http");
        assert_eq!(c.discovery.len(), 1, "the file's entry stays");
        assert_eq!(c.discovery[0].interval, Duration::from_secs(9));
        c.fill_defaults(
            "discovery-http",
            PluginDefaults {
                settings: vec![
                    ("url".into(), "env".into()),
                    ("timeout_ms".into(), "3000".into()),
                ],
                http: Some(vec![HostPattern::parse("10.0.0.1:443").expect("ok")]),
                ca_file: Some(PathBuf::from("/env/ca.crt")),
                bearer_token_file: Some(PathBuf::from("/env/token")),
                timeout: Some(Duration::from_secs(7)),
            },
        );
        let p = c.plugin("discovery-http");
        assert_eq!(
            p.settings,
            vec![
                ("url".to_string(), "file".to_string()),
                ("timeout_ms".to_string(), "3000".to_string())
            ]
        );
        assert_eq!(p.bearer_token_file, Some(PathBuf::from("/etc/sidecar/t")));
        assert_eq!(p.ca_file, Some(PathBuf::from("/env/ca.crt")));
        assert_eq!(p.http.map(|h| h.len()), Some(1));
        assert_eq!(p.timeout, Some(Duration::from_secs(7)));
        let mut d = PluginsConfig::defaults(&NamerVars::default()).expect("defaults");
        d.require_discovery("discovery-http");
        assert_eq!(d.discovery[0].interval, DEFAULT_DISCOVERY_INTERVAL);
    }

    #[test]
    fn required_emitters_get_host_settings() {
        let text = "emitters = [\"proxy-x\"]\n[plugins.proxy-x]\nwasm = \"x.wasm\"\nsettings = { a = \"file\", b = \"file\" }\n";
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("x.wasm"), b"").expect("write");
        let file = dir.path().join("p.toml");
        let mut c = PluginsConfig::parse(text, &file, &NamerVars::default()).expect("valid");
        c.require_emitter("proxy-x", vec![("b".into(), "host".into())]);
        c.require_emitter("proxy-y", vec![("c".into(), "host".into())]);
        let names: Vec<&str> = c.emitters.iter().map(|e| e.plugin.as_str()).collect();
        assert_eq!(names, ["proxy-x", "proxy-y"]);
        let x = c.plugin("proxy-x").settings;
        assert_eq!(
            x,
            vec![
                ("a".to_string(), "file".to_string()),
                ("b".to_string(), "host".to_string())
            ]
        );
        assert_eq!(
            c.plugin("proxy-y").settings,
            vec![("c".to_string(), "host".to_string())]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let (line, msg) = line_of("namer = \"namer-label\"\nnamr = \"x\"\n");
        assert_eq!(line, Some(2), "{msg}");
        assert!(msg.contains("unknown field `namr`"), "{msg}");

        let (line, msg) = line_of("\n\nnamer = \"nope\"\n");
        assert_eq!(line, Some(3), "{msg}");
        assert!(
            msg.starts_with("/etc/sidecar/plugins.toml:3: namer: unknown plugin `nope`"),
            "{msg}"
        );

        let (line, msg) = line_of("[checks]\nFoo = \"check-httpget\"\nBar = \"missing\"\n");
        assert_eq!(line, Some(3), "{msg}");

        let (line, msg) = line_of("[plugins.check-httpget]\n\nkind = \"checker\"\n");
        assert_eq!(line, Some(3), "{msg}");
        assert!(msg.contains("unknown kind `checker`"), "{msg}");

        let (line, msg) = line_of("[plugins.mine]\nkind = \"namer\"\n");
        assert_eq!(line, Some(1), "{msg}");
        assert!(msg.contains("needs `wasm"), "{msg}");

        let (line, msg) = line_of("[plugins.mine]\nwasm = \"does-not-exist.wasm\"\n");
        assert_eq!(line, Some(2), "{msg}");
        assert!(
            msg.contains("wasm file not found: /etc/sidecar/does-not-exist.wasm"),
            "{msg}"
        );

        let (line, msg) =
            line_of("[plugins.check-httpget]\ngrants = { http = [\"127.0.0.1:*\",\n \"nope\"] }\n");
        assert_eq!(line, Some(3), "{msg}");
        assert!(msg.contains("bad http pattern \"nope\""), "{msg}");

        let (line, _) = line_of("[plugins.check-httpget.limits]\nmemory_mb = 0\n");
        assert_eq!(line, Some(2));
        let (line, _) = line_of("[plugins.check-httpget.limits]\ntimeout = \"soon\"\n");
        assert_eq!(line, Some(2));
        let (line, msg) = line_of("[plugins.check-httpget.grants]\nexec = \"yes\"\n");
        assert_eq!(line, Some(2), "{msg}");
        let (line, msg) = line_of("[plugins.check-httpget]\nsettings = { a = [1] }\n");
        assert_eq!(line, Some(2), "{msg}");

        let (line, msg) = line_of("namer = [\n");
        assert!(line.is_some(), "syntax errors have a line too: {msg}");
    }
}
