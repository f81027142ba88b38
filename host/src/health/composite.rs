//! Check type `All`: several checks for one service, healthy only when every one passes
//! (Consul's `Checks` list; the default checks of a sidecar proxy are a `Tcp` and an
//! `Alias` check). A host built-in, not a plugin, because it runs other check types.
//!
//! Arguments: a JSON array of `{"Type": ..., "Args": ...}`, already templated by the
//! host. The checks run concurrently, each with the whole budget; the message lists each
//! one's result. A sub-check that cannot run (unknown type, bad arguments) makes the
//! service unhealthy and says why. `All` cannot contain `All`.

use async_trait::async_trait;
use sidecar_plugin_host::{
    CheckOutcome, CheckRequest, CheckSpec, CheckStatus, HealthChecker, PluginError,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The type name.
pub const ALL: &str = "All";

/// At most this many checks in one `All`: each runs on its own plugin instance.
pub const MAX_CHECKS: usize = 8;

/// `All` over the check types that exist when the registry is built.
pub struct AllOf {
    checkers: HashMap<String, Arc<dyn HealthChecker>>,
}

impl AllOf {
    pub fn new(checkers: HashMap<String, Arc<dyn HealthChecker>>) -> Self {
        AllOf { checkers }
    }

    fn get(&self, name: &str) -> Option<&Arc<dyn HealthChecker>> {
        self.checkers.get(name).or_else(|| {
            self.checkers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, c)| c)
        })
    }
}

/// The arguments of an `All` check for these checks.
pub fn args_for(checks: &[CheckSpec]) -> String {
    let list: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| serde_json::json!({"Type": c.check_type, "Args": c.args}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The checks an `All` check's arguments name.
pub fn parse_args(args: &str) -> Result<Vec<CheckSpec>, String> {
    let list: Vec<serde_json::Value> = serde_json::from_str(args)
        .map_err(|e| format!("All needs a JSON array of {{\"Type\", \"Args\"}}: {e}"))?;
    if list.is_empty() || list.len() > MAX_CHECKS {
        return Err(format!(
            "All needs 1 to {MAX_CHECKS} checks, got {}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let text = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| format!("All: check {i} has no string {k:?}"))
            };
            let spec = CheckSpec {
                check_type: text("Type")?,
                args: v
                    .get("Args")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_string(),
            };
            if spec.check_type.eq_ignore_ascii_case(ALL) {
                return Err(format!("All: check {i} is itself All"));
            }
            Ok(spec)
        })
        .collect()
}

#[async_trait]
impl HealthChecker for AllOf {
    async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError> {
        let specs = parse_args(&req.args).map_err(|message| PluginError::Failed {
            plugin: ALL.into(),
            message,
        })?;
        let runs = specs.iter().map(|spec| {
            let req = CheckRequest {
                args: spec.args.clone(),
                ..req.clone()
            };
            let checker = self.get(&spec.check_type).cloned();
            async move {
                match checker {
                    None => CheckOutcome {
                        status: CheckStatus::Unhealthy,
                        message: "unknown check type".into(),
                    },
                    Some(c) => c.check(req).await.unwrap_or_else(|e| CheckOutcome {
                        status: CheckStatus::Unhealthy,
                        message: e.to_string(),
                    }),
                }
            }
        });
        let outcomes = futures::future::join_all(runs).await;
        let healthy = outcomes.iter().all(|o| o.status == CheckStatus::Healthy);
        let message = specs
            .iter()
            .zip(&outcomes)
            .map(|(s, o)| {
                let verdict = match o.status {
                    CheckStatus::Healthy => "ok",
                    CheckStatus::Unhealthy => "FAIL",
                };
                format!("{} {verdict}: {}", s.check_type, o.message)
            })
            .collect::<Vec<_>>()
            .join("; ");
        Ok(CheckOutcome {
            status: if healthy {
                CheckStatus::Healthy
            } else {
                CheckStatus::Unhealthy
            },
            message: sidecar_plugin_sdk::text::truncate_with(&message, 1000, "..."),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::Service;
    use std::time::Duration;

    struct Fixed(CheckStatus, &'static str);

    #[async_trait]
    impl HealthChecker for Fixed {
        async fn check(&self, req: CheckRequest) -> Result<CheckOutcome, PluginError> {
            if req.args == "broken" {
                return Err(PluginError::Failed {
                    plugin: "fixed".into(),
                    message: "bad arguments".into(),
                });
            }
            Ok(CheckOutcome {
                status: self.0,
                message: format!("{} {}", self.1, req.args),
            })
        }
    }

    fn all() -> AllOf {
        let mut m: HashMap<String, Arc<dyn HealthChecker>> = HashMap::new();
        m.insert("Up".into(), Arc::new(Fixed(CheckStatus::Healthy, "up")));
        m.insert(
            "Down".into(),
            Arc::new(Fixed(CheckStatus::Unhealthy, "down")),
        );
        AllOf::new(m)
    }

    fn req(specs: &[(&str, &str)]) -> CheckRequest {
        let specs: Vec<CheckSpec> = specs
            .iter()
            .map(|(t, a)| CheckSpec {
                check_type: t.to_string(),
                args: a.to_string(),
            })
            .collect();
        CheckRequest {
            service: Service::default(),
            args: args_for(&specs),
            timeout: Duration::from_secs(1),
            host_ip: "127.0.0.1".into(),
        }
    }

    #[tokio::test]
    async fn healthy_only_when_every_check_passes() {
        let ok = all()
            .check(req(&[("Up", "a"), ("up", "b")]))
            .await
            .expect("runs");
        assert_eq!(ok.status, CheckStatus::Healthy);
        assert_eq!(ok.message, "Up ok: up a; up ok: up b");
        let bad = all()
            .check(req(&[("Up", "a"), ("Down", "b")]))
            .await
            .expect("runs");
        assert_eq!(bad.status, CheckStatus::Unhealthy);
        assert!(bad.message.contains("Down FAIL: down b"), "{}", bad.message);
    }

    #[tokio::test]
    async fn a_check_that_cannot_run_fails_the_service_and_says_why() {
        let out = all()
            .check(req(&[("Up", "broken"), ("Nope", "")]))
            .await
            .expect("runs");
        assert_eq!(out.status, CheckStatus::Unhealthy);
        assert!(out.message.contains("bad arguments"), "{}", out.message);
        assert!(out.message.contains("Nope FAIL: unknown check type"));
    }

    #[test]
    fn arguments_are_bounded_and_not_recursive() {
        assert!(parse_args("not json").is_err());
        assert!(parse_args("[]").is_err());
        let many = format!("[{}]", [r#"{"Type":"Up"}"#; MAX_CHECKS + 1].join(","));
        assert!(parse_args(&many).is_err());
        assert!(parse_args(r#"[{"Type":"all","Args":"[]"}]"#).is_err());
        let specs = vec![CheckSpec {
            check_type: "Tcp".into(),
            args: "127.0.0.1:1 \"quoted\"".into(),
        }];
        assert_eq!(parse_args(&args_for(&specs)).expect("round trip"), specs);
    }
}
