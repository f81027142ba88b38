//! HTTP API limits: `SIDECAR_HTTP_HEADER_TIMEOUT`, `SIDECAR_HTTP_IDLE_TIMEOUT`,
//! `SIDECAR_HTTP_WRITE_TIMEOUT`, `SIDECAR_HTTP_MAX_CONNECTIONS`,
//! `SIDECAR_HTTP_MAX_WATCHERS`, `SIDECAR_HTTP_MAX_HEADER_BYTES`.
//!
//! None of them can be switched off: zero is refused, since an unbounded timeout or
//! cap is what let a client hold the daemon's descriptors and memory.

use super::env::{Env, EnvError};
use crate::api::HttpLimits;
use std::time::Duration;

/// The largest head we let an operator allow (hyper buffers up to this per connection).
const MAX_HEADER_BYTES_CEILING: usize = 16 << 20;

impl HttpLimits {
    pub fn load(env: &Env) -> Result<Self, EnvError> {
        let d = HttpLimits::default();
        let max_header_bytes = count(env, "SIDECAR_HTTP_MAX_HEADER_BYTES", d.max_header_bytes)?;
        if !(HttpLimits::MIN_HEADER_BYTES..=MAX_HEADER_BYTES_CEILING).contains(&max_header_bytes) {
            return Err(invalid(
                env,
                "SIDECAR_HTTP_MAX_HEADER_BYTES",
                format!(
                    "must be between {} and {MAX_HEADER_BYTES_CEILING}",
                    HttpLimits::MIN_HEADER_BYTES
                ),
            ));
        }
        Ok(HttpLimits {
            header_timeout: timeout(env, "SIDECAR_HTTP_HEADER_TIMEOUT", d.header_timeout)?,
            idle_timeout: timeout(env, "SIDECAR_HTTP_IDLE_TIMEOUT", d.idle_timeout)?,
            write_timeout: timeout(env, "SIDECAR_HTTP_WRITE_TIMEOUT", d.write_timeout)?,
            max_connections: count(env, "SIDECAR_HTTP_MAX_CONNECTIONS", d.max_connections)?,
            max_watchers: count(env, "SIDECAR_HTTP_MAX_WATCHERS", d.max_watchers)?,
            max_header_bytes,
        })
    }
}

fn invalid(env: &Env, name: &str, reason: String) -> EnvError {
    EnvError {
        name: name.to_string(),
        value: env.string(name, None).unwrap_or_default(),
        reason,
    }
}

fn timeout(env: &Env, name: &str, default: Duration) -> Result<Duration, EnvError> {
    match env.duration(name, None)? {
        None => Ok(default),
        Some(d) if d.is_zero() => Err(invalid(env, name, "must be greater than zero".into())),
        Some(d) => Ok(d),
    }
}

fn count(env: &Env, name: &str, default: usize) -> Result<usize, EnvError> {
    match env.int::<usize>(name, None)? {
        None => Ok(default),
        Some(0) => Err(invalid(env, name, "must be at least 1".into())),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_everything() {
        let l = HttpLimits::load(&Env::default()).expect("defaults");
        assert_eq!(l, HttpLimits::default());
        assert_eq!(l.header_timeout, Duration::from_secs(10));
        assert_eq!(l.idle_timeout, Duration::from_secs(60));
        assert_eq!(l.write_timeout, Duration::from_secs(30));
        assert_eq!(l.max_connections, 4096);
        assert_eq!(l.max_watchers, 1024);
        assert_eq!(l.max_header_bytes, 65536);
    }

    #[test]
    fn settings_are_read_as_go_durations_and_counts() {
        let env = Env::from_pairs([
            ("SIDECAR_HTTP_HEADER_TIMEOUT", "1.5s"),
            ("SIDECAR_HTTP_IDLE_TIMEOUT", "2m"),
            ("SIDECAR_HTTP_WRITE_TIMEOUT", "500ms"),
            ("SIDECAR_HTTP_MAX_CONNECTIONS", "20"),
            ("SIDECAR_HTTP_MAX_WATCHERS", " 3 "),
            ("SIDECAR_HTTP_MAX_HEADER_BYTES", "8192"),
        ]);
        let l = HttpLimits::load(&env).expect("valid");
        assert_eq!(l.header_timeout, Duration::from_millis(1500));
        assert_eq!(l.idle_timeout, Duration::from_secs(120));
        assert_eq!(l.write_timeout, Duration::from_millis(500));
        assert_eq!(l.max_connections, 20);
        assert_eq!(l.max_watchers, 3);
        assert_eq!(l.max_header_bytes, 8192);
    }

    #[test]
    fn zero_garbage_and_out_of_range_values_are_refused_by_name() {
        for (name, value) in [
            ("SIDECAR_HTTP_HEADER_TIMEOUT", "0"),
            ("SIDECAR_HTTP_IDLE_TIMEOUT", "10"),
            ("SIDECAR_HTTP_WRITE_TIMEOUT", "-1s"),
            ("SIDECAR_HTTP_MAX_CONNECTIONS", "0"),
            ("SIDECAR_HTTP_MAX_WATCHERS", "many"),
            ("SIDECAR_HTTP_MAX_HEADER_BYTES", "1024"),
            ("SIDECAR_HTTP_MAX_HEADER_BYTES", "999999999"),
        ] {
            let e = HttpLimits::load(&Env::from_pairs([(name, value)]))
                .expect_err(&format!("{name}={value}"));
            assert_eq!(e.name, name);
        }
    }
}
