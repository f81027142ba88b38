//! The catalog's bounds: how far ahead a peer's clock may run, and how much one peer
//! (or a flood of forged peer names) may make us store.

use crate::config::agent::ConfigError;
use crate::config::env::Env;
use sidecar_catalog::Lifespans;

/// Lifespans keep Sidecar's values; the limits are ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    pub lifespans: Lifespans,
}

impl CatalogConfig {
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let mut lifespans = Lifespans::default();
        if let Some(d) = env.duration("SIDECAR_MAX_CLOCK_AHEAD", None)? {
            if d.is_zero() {
                return Err(ConfigError::Invalid(
                    "SIDECAR_MAX_CLOCK_AHEAD must be positive".into(),
                ));
            }
            lifespans.max_future = d;
        }
        if let Some(n) = env.int::<usize>("SIDECAR_MAX_RECORDS_PER_ANNOUNCER", None)? {
            lifespans.max_records_per_announcer = n.max(1);
        }
        if let Some(n) = env.int::<usize>("SIDECAR_MAX_ANNOUNCERS", None)? {
            lifespans.max_announcers = n.max(1);
        }
        Ok(CatalogConfig { lifespans })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_and_overrides() {
        let c = CatalogConfig::load(&Env::from_pairs::<&str, &str>([])).expect("defaults");
        assert_eq!(c.lifespans, Lifespans::default());
        assert_eq!(c.lifespans.max_future, Duration::from_secs(7200));
        let env = Env::from_pairs([
            ("SIDECAR_MAX_CLOCK_AHEAD", "30m"),
            ("SIDECAR_MAX_RECORDS_PER_ANNOUNCER", "500"),
            ("SIDECAR_MAX_ANNOUNCERS", "64"),
        ]);
        let c = CatalogConfig::load(&env).expect("valid");
        assert_eq!(c.lifespans.max_future, Duration::from_secs(1800));
        assert_eq!(c.lifespans.max_records_per_announcer, 500);
        assert_eq!(c.lifespans.max_announcers, 64);
        for bad in [
            ("SIDECAR_MAX_CLOCK_AHEAD", "0s"),
            ("SIDECAR_MAX_ANNOUNCERS", "many"),
        ] {
            assert!(
                CatalogConfig::load(&Env::from_pairs([bad])).is_err(),
                "{bad:?}"
            );
        }
    }
}
