//! Health checks of local services: which check each service gets ([`CheckRegistry`]),
//! argument templating ([`template`]), the state machine ([`state`]) and the scheduler
//! that runs them ([`scheduler`]). Checks run through the `HealthChecker` trait, i.e.
//! the plugin runtime's check types: the check logic itself is policy, in plugins.

pub mod composite;
pub mod local;
pub mod metrics;
pub mod reports;
pub mod scheduler;
pub mod state;
pub mod template;

pub use local::LocalState;
pub use metrics::HealthMetrics;
pub use reports::{CheckReport, CheckReports};
use sidecar_catalog::{PortKind, Service};
use sidecar_plugin_host::{CheckSpec, HealthChecker};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Scheduler settings. Sidecar fixed them (3 s, one failure = UNHEALTHY); ours default
/// to the same values and can be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// `SIDECAR_HEALTH_INTERVAL` (3s): time between two runs of one check.
    pub interval: Duration,
    /// `SIDECAR_HEALTH_TIMEOUT` (3s, at most the interval): deadline of one run.
    pub timeout: Duration,
    /// `SIDECAR_HEALTH_CONCURRENCY` (64): checks running at the same time.
    pub concurrency: usize,
    /// `SIDECAR_HEALTH_RISE` (1): consecutive passes that turn UNHEALTHY into ALIVE.
    pub rise: u32,
    /// `SIDECAR_HEALTH_FALL` (1): consecutive failures that turn ALIVE into UNHEALTHY.
    pub fall: u32,
    /// `SIDECAR_DEFAULT_CHECK_ENDPOINT` (`/version`; empty means `/`).
    pub default_endpoint: String,
    /// `SIDECAR_CONTAINER_EXEC_CHECKS` (false): whether a container's labels may ask
    /// for a check type that runs programs (`External`). Off, anyone who can start a
    /// container could run commands as the daemon.
    pub container_exec_checks: bool,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(3),
            concurrency: 64,
            rise: 1,
            fall: 1,
            default_endpoint: "/version".into(),
            container_exec_checks: false,
        }
    }
}

/// A check ready to run: the type's checker name and the rendered arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCheck {
    pub check_type: String,
    pub args: String,
}

/// Check types by name.
#[derive(Clone, Default)]
pub struct CheckRegistry {
    checkers: HashMap<String, Arc<dyn HealthChecker>>,
    /// Types whose plugin holds the exec grant.
    exec: HashSet<String>,
}

pub const HTTP_GET: &str = "HttpGet";
pub const ALWAYS_SUCCESSFUL: &str = "AlwaysSuccessful";

impl CheckRegistry {
    /// The plugins' check types, plus the built-in `All` over them (unless a plugin
    /// took that name).
    pub fn new(mut checkers: HashMap<String, Arc<dyn HealthChecker>>) -> Self {
        if !checkers.contains_key(composite::ALL) {
            let all = composite::AllOf::new(checkers.clone());
            checkers.insert(composite::ALL.into(), Arc::new(all));
        }
        CheckRegistry {
            checkers,
            exec: HashSet::new(),
        }
    }

    /// Marks the check types whose plugin may run programs.
    pub fn with_exec_types(mut self, types: impl IntoIterator<Item = String>) -> Self {
        self.exec = types.into_iter().collect();
        self
    }

    /// Whether the checker a type name resolves to (see [`Self::get`]) runs programs.
    pub fn runs_programs(&self, check_type: &str) -> bool {
        self.get(check_type)
            .is_some_and(|(name, _)| self.exec.contains(&name))
    }

    /// Whether this check runs programs: its type, or for `All` any check it lists
    /// (arguments that do not parse run nothing).
    pub fn check_runs_programs(&self, check: &ResolvedCheck) -> bool {
        if check.check_type.eq_ignore_ascii_case(composite::ALL)
            && !self.runs_programs(&check.check_type)
        {
            return composite::parse_args(&check.args)
                .is_ok_and(|specs| specs.iter().any(|s| self.runs_programs(&s.check_type)));
        }
        self.runs_programs(&check.check_type)
    }

    /// Adds or replaces a check type.
    pub fn insert(&mut self, name: impl Into<String>, checker: Arc<dyn HealthChecker>) {
        self.checkers.insert(name.into(), checker);
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.checkers.keys().cloned().collect();
        v.sort();
        v
    }

    /// The checker for a type name: exact, then ignoring case. None for a name nobody
    /// registered: the scheduler reports it and leaves the service UNKNOWN. (Sidecar ran
    /// unknown names as HttpGet, which then failed on arguments that are no URL.)
    pub fn get(&self, check_type: &str) -> Option<(String, Arc<dyn HealthChecker>)> {
        if let Some(c) = self.checkers.get(check_type) {
            return Some((check_type.to_string(), c.clone()));
        }
        self.checkers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(check_type))
            .map(|(k, c)| (k.clone(), c.clone()))
    }
}

/// Sidecar's check selection: the discovered check with templated arguments, else
/// HttpGet on the first tcp port at the default endpoint, else AlwaysSuccessful.
pub fn resolve(
    spec: Option<&CheckSpec>,
    svc: &Service,
    host_ip: &str,
    default_endpoint: &str,
) -> ResolvedCheck {
    if let Some(spec) = spec.filter(|s| !s.check_type.is_empty()) {
        return ResolvedCheck {
            check_type: spec.check_type.clone(),
            args: template::render(&spec.args, svc, host_ip),
        };
    }
    match svc.ports.iter().find(|p| p.kind == PortKind::Tcp) {
        Some(p) => {
            let ip = if p.ip.is_empty() { host_ip } else { &p.ip };
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            ResolvedCheck {
                check_type: HTTP_GET.into(),
                args: format!("http://{ip}:{}{default_endpoint}", p.port),
            }
        }
        None => ResolvedCheck {
            check_type: ALWAYS_SUCCESSFUL.into(),
            args: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::Port;

    #[test]
    fn default_check_is_httpget_on_the_first_tcp_port() {
        let mut svc = Service {
            ports: vec![
                Port {
                    kind: PortKind::Udp,
                    port: 53,
                    service_port: 53,
                    ip: "10.0.0.2".into(),
                },
                Port {
                    kind: PortKind::Tcp,
                    port: 8080,
                    service_port: 80,
                    ip: "10.0.0.2".into(),
                },
            ],
            ..Service::default()
        };
        let c = resolve(None, &svc, "10.0.0.1", "/version");
        assert_eq!(c.check_type, "HttpGet");
        assert_eq!(c.args, "http://10.0.0.2:8080/version");
        svc.ports.remove(1);
        let c = resolve(None, &svc, "10.0.0.1", "/version");
        assert_eq!(c.check_type, "AlwaysSuccessful");
        let spec = CheckSpec {
            check_type: "External".into(),
            args: "check {{ host }}".into(),
        };
        assert_eq!(
            resolve(Some(&spec), &svc, "10.0.0.1", "/").args,
            "check 10.0.0.1"
        );
    }

    struct Healthy;

    #[async_trait::async_trait]
    impl HealthChecker for Healthy {
        async fn check(
            &self,
            _req: sidecar_plugin_host::CheckRequest,
        ) -> Result<sidecar_plugin_host::CheckOutcome, sidecar_plugin_host::PluginError> {
            Ok(sidecar_plugin_host::CheckOutcome {
                status: sidecar_plugin_host::CheckStatus::Healthy,
                message: String::new(),
            })
        }
    }

    #[test]
    fn names_match_ignoring_case_and_unknown_types_are_none() {
        let r = CheckRegistry::new(
            [HTTP_GET, "External", ALWAYS_SUCCESSFUL, "Tcp"]
                .into_iter()
                .map(|n| (n.to_string(), Arc::new(Healthy) as Arc<dyn HealthChecker>))
                .collect(),
        );
        assert_eq!(r.get("httpget").map(|c| c.0).as_deref(), Some("HttpGet"));
        assert_eq!(r.get("TCP").map(|c| c.0).as_deref(), Some("Tcp"));
        assert!(r.get("Whatever").is_none(), "no silent HttpGet");
        assert_eq!(r.get("External").map(|c| c.0).as_deref(), Some("External"));
    }
}
