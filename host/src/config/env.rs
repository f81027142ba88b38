//! Environment variables the way Sidecar reads them (kelseyhightower/envconfig).
//!
//! Sidecar looks every variable up under its prefixed name (`HAPROXY_BIND_IP`) and, when
//! that is not set at all, under the bare name (`BIND_IP`). We honour the bare fallback
//! only where a field opts in: Sidecar's own compose file relies on `BIND_IP`, while
//! fallbacks such as `USER` for `HAPROXY_USER` silently pick up the shell's login name.
//! A variable set to the empty string counts as set, as in Sidecar.

use sidecar_catalog::parse_go_duration;
use std::collections::HashMap;
use std::time::Duration;

/// A snapshot of the environment (tests build one from pairs).
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

/// A variable that is set but does not parse. Startup fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct EnvError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// An environment file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SIDECAR_CONFIG_FILE {path}: {reason}")]
pub struct EnvFileError {
    pub path: String,
    pub reason: String,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// This environment with the variables of an environment file laid over it (the
    /// file's values win), in the format systemd's `EnvironmentFile=` reads: `KEY=value`
    /// lines, `#` comments, optional `export `, values optionally in single or double
    /// quotes. Refuses files over 1 MiB and malformed lines, naming the line.
    pub fn overlay_file(mut self, path: &std::path::Path) -> Result<Self, EnvFileError> {
        let err = |reason: String| EnvFileError {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > 1 << 20 {
            return Err(err("larger than 1 MiB".into()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((k, v)) = line.split_once('=') else {
                return Err(err(format!("line {}: expected KEY=value", n + 1)));
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(format!("line {}: {k:?} is not a variable name", n + 1)));
            }
            let v = v.trim();
            let v = match (v.chars().next(), v.chars().last()) {
                (Some(q @ ('"' | '\'')), Some(e)) if q == e && v.len() >= 2 => &v[1..v.len() - 1],
                _ => v,
            };
            self.vars.insert(k.to_string(), v.to_string());
        }
        Ok(self)
    }

    /// The raw value and the name it was found under: `name` first, then `bare`.
    pub fn lookup(&self, name: &str, bare: Option<&str>) -> Option<(&str, &str)> {
        if let Some((k, v)) = self.vars.get_key_value(name) {
            return Some((k.as_str(), v.as_str()));
        }
        let bare = bare?;
        self.vars
            .get_key_value(bare)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn string(&self, name: &str, bare: Option<&str>) -> Option<String> {
        self.lookup(name, bare).map(|(_, v)| v.to_string())
    }

    /// Like `string`, treating an empty value as unset (for optional addresses).
    pub fn non_empty(&self, name: &str, bare: Option<&str>) -> Option<String> {
        self.string(name, bare).filter(|v| !v.is_empty())
    }

    pub fn bool(&self, name: &str, bare: Option<&str>) -> Result<Option<bool>, EnvError> {
        self.parse(name, bare, parse_go_bool)
    }

    pub fn duration(&self, name: &str, bare: Option<&str>) -> Result<Option<Duration>, EnvError> {
        self.parse(name, bare, parse_go_duration)
    }

    pub fn int<T: std::str::FromStr>(
        &self,
        name: &str,
        bare: Option<&str>,
    ) -> Result<Option<T>, EnvError> {
        self.parse(name, bare, |v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| "not a valid integer".to_string())
        })
    }

    /// A comma-separated list; entries are trimmed and empty ones dropped (Sidecar keeps
    /// the spaces, so `a, b` would look for host " b").
    pub fn list(&self, name: &str, bare: Option<&str>) -> Option<Vec<String>> {
        self.string(name, bare).map(|v| split_list(&v))
    }

    fn parse<T>(
        &self,
        name: &str,
        bare: Option<&str>,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, EnvError> {
        match self.lookup(name, bare) {
            None => Ok(None),
            Some((found, value)) => f(value).map(Some).map_err(|reason| EnvError {
                name: found.to_string(),
                value: value.to_string(),
                reason,
            }),
        }
    }
}

pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("not a boolean (true/false/1/0/t/f)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_file_overlays_the_process_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("sidecar.env");
        std::fs::write(
            &f,
            "# comment\n\nSIDECAR_LOGGING_LEVEL=debug\nexport SIDECAR_SEEDS=\"a, b\"\nEMPTY=''\n",
        )
        .expect("write");
        let env = Env::from_pairs([("SIDECAR_LOGGING_LEVEL", "info"), ("KEEP", "1")])
            .overlay_file(&f)
            .expect("parses");
        assert_eq!(
            env.string("SIDECAR_LOGGING_LEVEL", None).as_deref(),
            Some("debug")
        );
        assert_eq!(env.string("SIDECAR_SEEDS", None).as_deref(), Some("a, b"));
        assert_eq!(env.string("EMPTY", None).as_deref(), Some(""));
        assert_eq!(env.string("KEEP", None).as_deref(), Some("1"));
        std::fs::write(&f, "OK=1\nnot a line\n").expect("write");
        let e = Env::default().overlay_file(&f).expect_err("malformed");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(
            Env::default()
                .overlay_file(&dir.path().join("missing"))
                .is_err()
        );
    }

    #[test]
    fn prefixed_name_wins_then_bare_fallback_when_allowed() {
        let env = Env::from_pairs([("BIND_IP", "10.0.0.1"), ("HAPROXY_CONFIG_FILE", "")]);
        assert_eq!(
            env.string("HAPROXY_BIND_IP", Some("BIND_IP")).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(env.string("HAPROXY_BIND_IP", None), None);
        assert_eq!(
            env.string("HAPROXY_CONFIG_FILE", Some("CONFIG_FILE"))
                .as_deref(),
            Some(""),
            "empty counts as set"
        );
        assert_eq!(env.non_empty("HAPROXY_CONFIG_FILE", None), None);
    }

    #[test]
    fn go_bools_and_errors_name_the_variable() {
        let env = Env::from_pairs([("A", "T"), ("B", "yes")]);
        assert_eq!(env.bool("A", None), Ok(Some(true)));
        let e = env
            .bool("X_B", Some("B"))
            .expect_err("yes is not a Go bool");
        assert_eq!(e.name, "B");
        assert!(e.to_string().starts_with("B=\"yes\""));
    }

    #[test]
    fn lists_are_trimmed() {
        let env = Env::from_pairs([("SEEDS", "a, b,,c:7946 ")]);
        assert_eq!(
            env.list("SEEDS", None),
            Some(vec!["a".into(), "b".into(), "c:7946".into()])
        );
    }
}
