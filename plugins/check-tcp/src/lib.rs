//! Health-check type `Tcp`: open a TCP connection to the `host:port` in the check's
//! arguments through the host's `net.tcp-connect` import, and close it.
//!
//! * Connected within the check's timeout: healthy.
//! * Refused, reset, unresolvable, or no connection within the timeout: unhealthy, with
//!   the reason.
//! * A destination outside the plugin's `net` grant, or arguments that are not
//!   `host:port` (`[v6]:port`; an empty host means 127.0.0.1), is an error.
//!
//! The arguments are templated like HttpGet's: `{{ host }}:{{ tcp 8080 }}`. No settings.

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::{Settings, net};

struct Tcp;

impl HealthCheck for Tcp {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "Tcp")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let address = req.args.trim();
        if address.is_empty() {
            return Err("Tcp needs host:port as its argument".to_string());
        }
        judge(
            address,
            req.timeout_ms,
            net::tcp_connect(address, req.timeout_ms),
        )
    }
}

fn judge(
    address: &str,
    timeout_ms: u32,
    r: Result<u64, net::Error>,
) -> Result<CheckResult, String> {
    match r {
        Ok(micros) => Ok(CheckResult::healthy(format!(
            "connected to {address} in {:.1} ms",
            micros as f64 / 1000.0
        ))),
        Err(net::Error::Timeout) => Ok(CheckResult::unhealthy(format!(
            "connect to {address}: no connection within {timeout_ms} ms"
        ))),
        Err(net::Error::Connect(why)) | Err(net::Error::Other(why)) => {
            Ok(CheckResult::unhealthy(why))
        }
        Err(net::Error::Denied(why)) => Err(format!("connect to {address} denied: {why}")),
        Err(net::Error::InvalidAddress(why)) => Err(format!("bad address: {why}")),
    }
}

health_check::export!(Tcp);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    #[test]
    fn outcomes() {
        let ok = judge("h:1", 3000, Ok(1500)).expect("result");
        assert_eq!(
            (ok.status, ok.message.as_str()),
            (CheckStatus::Healthy, "connected to h:1 in 1.5 ms")
        );
        let refused =
            judge("h:1", 3000, Err(net::Error::Connect("refused".into()))).expect("result");
        assert_eq!(refused.status, CheckStatus::Unhealthy);
        let slow = judge("h:1", 3000, Err(net::Error::Timeout)).expect("result");
        assert!(slow.message.contains("3000 ms"), "{}", slow.message);
        assert!(judge("h:1", 3000, Err(net::Error::Denied("no".into()))).is_err());
    }
}
