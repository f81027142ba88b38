//! Log settings: `SIDECAR_LOGGING_LEVEL` (or `-l`), `SIDECAR_LOGGING_FORMAT`, `RUST_LOG`,
//! `NO_COLOR`. The command line builds the subscriber from them.

use super::env::Env;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A `tracing` filter: `RUST_LOG` when set, else the level (debug, info, warn,
    /// error; anything else is info, as in Sidecar).
    pub filter: String,
    /// `SIDECAR_LOGGING_FORMAT=json`.
    pub json: bool,
    /// Colour codes only for a person at a terminal: a daemon's stderr usually goes to
    /// journald or a file, where escape codes are noise. `NO_COLOR` turns them off too.
    pub colours: bool,
}

impl LogSettings {
    /// `level` is the flag or `SIDECAR_LOGGING_LEVEL`; `default` applies without either.
    pub fn load(env: &Env, level: Option<&str>, default: &str) -> Self {
        let level = level
            .map(str::to_string)
            .or_else(|| env.non_empty("SIDECAR_LOGGING_LEVEL", Some("LOGGING_LEVEL")))
            .unwrap_or_else(|| default.to_string());
        let level = match level.to_ascii_lowercase().as_str() {
            l @ ("trace" | "debug" | "info" | "warn" | "error") => l.to_string(),
            _ => "info".to_string(),
        };
        use std::io::IsTerminal;
        LogSettings {
            filter: env.non_empty("RUST_LOG", None).unwrap_or(level),
            json: env
                .string("SIDECAR_LOGGING_FORMAT", Some("LOGGING_FORMAT"))
                .is_some_and(|f| f.eq_ignore_ascii_case("json")),
            colours: std::io::stderr().is_terminal() && env.string("NO_COLOR", None).is_none(),
        }
    }

    /// For the commands that are not the daemon: warnings only, unless `RUST_LOG`.
    pub fn for_tools() -> Self {
        LogSettings::load(&Env::from_process(), Some("warn"), "warn")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_and_unknown_levels_are_info() {
        let env = Env::from_pairs([("SIDECAR_LOGGING_LEVEL", "loud")]);
        assert_eq!(LogSettings::load(&env, None, "info").filter, "info");
        let env = Env::from_pairs([("RUST_LOG", "sidecar=debug"), ("LOGGING_LEVEL", "warn")]);
        assert_eq!(
            LogSettings::load(&env, None, "info").filter,
            "sidecar=debug"
        );
        let env = Env::from_pairs([("LOGGING_LEVEL", "WARN"), ("LOGGING_FORMAT", "json")]);
        let s = LogSettings::load(&env, Some("debug"), "info");
        assert_eq!((s.filter.as_str(), s.json), ("debug", true));
    }
}
