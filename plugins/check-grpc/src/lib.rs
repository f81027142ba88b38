//! Health-check type `GrpcHealth`: the standard `grpc.health.v1.Health/Check`, through
//! the host's `net.grpc-health` import (plaintext HTTP/2).
//!
//! Arguments: `host:port`, or `host:port/service` to ask about one service (Consul's
//! `GRPC` check syntax); templated like HttpGet's (`{{ host }}:{{ tcp 9090 }}/api.v1`).
//!
//! * `SERVING`: healthy.
//! * `NOT_SERVING`, `UNKNOWN`, a service the server does not know, no server, or no
//!   answer within the check's timeout: unhealthy, with the reason.
//! * A destination outside the plugin's `net` grant, or a bad address, is an error.
//!
//! No settings.

use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::net::{self, ServingStatus};

struct GrpcHealth;

impl HealthCheck for GrpcHealth {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "GrpcHealth")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let (address, service) = split(&req.args)?;
        let r = net::grpc_health(address, service, req.timeout_ms);
        judge(address, service, req.timeout_ms, r)
    }
}

/// `host:port[/service]`.
fn split(args: &str) -> Result<(&str, &str), String> {
    let args = args.trim();
    let (address, service) = args.split_once('/').unwrap_or((args, ""));
    if address.is_empty() {
        return Err("GrpcHealth needs host:port[/service] as its argument".to_string());
    }
    Ok((address, service))
}

fn judge(
    address: &str,
    service: &str,
    timeout_ms: u32,
    r: Result<ServingStatus, net::Error>,
) -> Result<CheckResult, String> {
    let what = if service.is_empty() {
        address.to_string()
    } else {
        format!("{address} service {service:?}")
    };
    match r {
        Ok(ServingStatus::Serving) => Ok(CheckResult::healthy(format!("{what}: SERVING"))),
        Ok(ServingStatus::NotServing) => Ok(CheckResult::unhealthy(format!("{what}: NOT_SERVING"))),
        Ok(ServingStatus::Unknown) => Ok(CheckResult::unhealthy(format!("{what}: UNKNOWN"))),
        Ok(ServingStatus::ServiceUnknown) => Ok(CheckResult::unhealthy(format!(
            "{what}: the server does not know this service"
        ))),
        Err(net::Error::Timeout) => Ok(CheckResult::unhealthy(format!(
            "{what}: no answer within {timeout_ms} ms"
        ))),
        Err(net::Error::Connect(why)) | Err(net::Error::Other(why)) => {
            Ok(CheckResult::unhealthy(format!("{what}: {why}")))
        }
        Err(net::Error::Denied(why)) => {
            Err(format!("gRPC health check of {address} denied: {why}"))
        }
        Err(net::Error::InvalidAddress(why)) => Err(format!("bad address: {why}")),
    }
}

health_check::export!(GrpcHealth);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    #[test]
    fn arguments() {
        assert_eq!(split(" 127.0.0.1:9090 "), Ok(("127.0.0.1:9090", "")));
        assert_eq!(
            split("h:1/grpc.health.v1.Health"),
            Ok(("h:1", "grpc.health.v1.Health"))
        );
        assert!(split("  ").is_err());
    }

    #[test]
    fn only_serving_is_healthy() {
        let r = |s| judge("h:1", "", 3000, Ok(s)).expect("result").status;
        assert_eq!(r(ServingStatus::Serving), CheckStatus::Healthy);
        for s in [
            ServingStatus::NotServing,
            ServingStatus::Unknown,
            ServingStatus::ServiceUnknown,
        ] {
            assert_eq!(r(s), CheckStatus::Unhealthy);
        }
        let m = judge("h:1", "db", 3000, Ok(ServingStatus::NotServing))
            .expect("result")
            .message;
        assert_eq!(m, "h:1 service \"db\": NOT_SERVING");
        assert!(judge("h:1", "", 1, Err(net::Error::Denied("x".into()))).is_err());
    }
}
