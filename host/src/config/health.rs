//! Health-check scheduler settings: `SIDECAR_HEALTH_*`, `SIDECAR_DEFAULT_CHECK_ENDPOINT`,
//! `SIDECAR_CONTAINER_EXEC_CHECKS`.

use super::env::{Env, EnvError};
use crate::health::HealthConfig;

impl HealthConfig {
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let d = HealthConfig::default();
        let interval = env
            .duration("SIDECAR_HEALTH_INTERVAL", None)?
            .filter(|d| !d.is_zero())
            .unwrap_or(d.interval);
        let timeout = env
            .duration("SIDECAR_HEALTH_TIMEOUT", None)?
            .filter(|d| !d.is_zero())
            .unwrap_or(d.timeout)
            .min(interval);
        let endpoint = env
            .string("SIDECAR_DEFAULT_CHECK_ENDPOINT", None)
            .unwrap_or(d.default_endpoint);
        Ok(HealthConfig {
            interval,
            timeout,
            concurrency: env
                .int::<usize>("SIDECAR_HEALTH_CONCURRENCY", None)?
                .unwrap_or(d.concurrency)
                .max(1),
            rise: env
                .int::<u32>("SIDECAR_HEALTH_RISE", None)?
                .unwrap_or(1)
                .max(1),
            fall: env
                .int::<u32>("SIDECAR_HEALTH_FALL", None)?
                .unwrap_or(1)
                .max(1),
            default_endpoint: if endpoint.is_empty() {
                "/".into()
            } else {
                endpoint
            },
            container_exec_checks: env
                .bool("SIDECAR_CONTAINER_EXEC_CHECKS", None)?
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn config_from_env() {
        let env = Env::from_pairs([
            ("SIDECAR_HEALTH_INTERVAL", "1s"),
            ("SIDECAR_HEALTH_TIMEOUT", "5s"),
            ("SIDECAR_DEFAULT_CHECK_ENDPOINT", ""),
        ]);
        let c = HealthConfig::load(&env).expect("valid");
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_secs(1), "capped at the interval");
        assert_eq!(c.default_endpoint, "/");
        assert!(HealthConfig::load(&Env::from_pairs([("SIDECAR_HEALTH_RISE", "x")])).is_err());
    }
}
