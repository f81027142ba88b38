//! What systemd hands a `Type=notify` service: `NOTIFY_SOCKET` and the watchdog period
//! (`WATCHDOG_USEC`, for this process only when `WATCHDOG_PID` names it), plus the
//! test-only `SIDECAR_TEST_STALL` that freezes one event loop so the watchdog can be seen
//! to stop.

use super::agent::ConfigError;
use super::env::Env;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceManagerConfig {
    /// A path, or `@name` for an abstract socket.
    pub notify_socket: Option<String>,
    /// systemd's `WatchdogSec`: the daemon pets at half of it.
    pub watchdog: Option<Duration>,
    /// `(loop name, after)`: freeze that loop once `after` has passed (tests only).
    pub stall: Option<(String, Duration)>,
}

impl ServiceManagerConfig {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let for_us = env
            .non_empty("WATCHDOG_PID", None)
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = match env.int::<u64>("WATCHDOG_USEC", None)? {
            Some(us) if us > 0 && for_us => Some(Duration::from_micros(us)),
            _ => None,
        };
        let stall = match env.non_empty("SIDECAR_TEST_STALL", None) {
            None => None,
            Some(v) => {
                let (name, after) = v.split_once(':').unwrap_or((v.as_str(), "0s"));
                let after = sidecar_catalog::parse_go_duration(after)
                    .map_err(|e| ConfigError::Invalid(format!("SIDECAR_TEST_STALL={v:?}: {e}")))?;
                if !matches!(name, "gossip" | "announcer") {
                    return Err(ConfigError::Invalid(format!(
                        "SIDECAR_TEST_STALL={v:?}: the loop is `gossip` or `announcer`"
                    )));
                }
                Some((name.to_string(), after))
            }
        };
        Ok(ServiceManagerConfig {
            notify_socket: env.non_empty("NOTIFY_SOCKET", None),
            watchdog,
            stall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_variables() {
        let c = ServiceManagerConfig::load(&Env::default()).expect("valid");
        assert_eq!(c, ServiceManagerConfig::default());
        let me = std::process::id().to_string();
        let env = Env::from_pairs([
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("WATCHDOG_USEC", "30000000"),
            ("WATCHDOG_PID", me.as_str()),
            ("SIDECAR_TEST_STALL", "gossip:3s"),
        ]);
        let c = ServiceManagerConfig::load(&env).expect("valid");
        assert_eq!(c.notify_socket.as_deref(), Some("/run/systemd/notify"));
        assert_eq!(c.watchdog, Some(Duration::from_secs(30)));
        assert_eq!(c.stall, Some(("gossip".into(), Duration::from_secs(3))));
        // Another process's watchdog (inherited from a parent) is not ours.
        let env = Env::from_pairs([("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", "1")]);
        assert_eq!(
            ServiceManagerConfig::load(&env).expect("valid").watchdog,
            None
        );
        for bad in [("WATCHDOG_USEC", "soon"), ("SIDECAR_TEST_STALL", "api:1s")] {
            assert!(ServiceManagerConfig::load(&Env::from_pairs([bad])).is_err());
        }
    }
}
