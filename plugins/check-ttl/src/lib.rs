//! Health-check type `Ttl`: the service reports its own health with
//! `PUT /api/services/{id}/ttl/{pass|warn|fail}`; the check judges the latest report,
//! read through the host's `local-services.last-ttl-report` import.
//!
//! Arguments: the TTL as a Go duration (`30s`, `1m30s`, `500ms`).
//!
//! * A `pass` or `warn` report younger than the TTL: healthy (a warning's note is
//!   shown; Sidecar has no warning state, and Consul keeps warning instances in DNS).
//! * A `fail` report: unhealthy, with its note.
//! * No report yet, or the latest older than the TTL: unhealthy (as Consul's TTL
//!   checks, which start critical).
//!
//! No settings.

use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::local_services::{self, TtlReport, TtlState};

struct Ttl;

impl HealthCheck for Ttl {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "Ttl")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let ttl_ms = parse_duration_ms(req.args.trim())
            .map_err(|why| format!("Ttl needs a TTL such as 30s as its argument: {why}"))?;
        let report = local_services::last_ttl_report(&req.service.id);
        Ok(judge(&req.service.id, ttl_ms, report))
    }
}

fn judge(id: &str, ttl_ms: u64, report: Option<TtlReport>) -> CheckResult {
    let ttl = show_ms(ttl_ms);
    let Some(r) = report else {
        return CheckResult::unhealthy(format!(
            "no TTL report yet (expected every {ttl}: PUT /api/services/{id}/ttl/pass)"
        ));
    };
    let note = if r.note.is_empty() {
        String::new()
    } else {
        format!(": {}", r.note)
    };
    if r.age_ms > ttl_ms {
        let state = state_name(r.state);
        return CheckResult::unhealthy(format!(
            "TTL expired: last report ({state}) {} ago, TTL {ttl}",
            show_ms(r.age_ms)
        ));
    }
    match r.state {
        TtlState::Pass => CheckResult::healthy(format!("pass{note}")),
        TtlState::Warn => CheckResult::healthy(format!("warn{note}")),
        TtlState::Fail => CheckResult::unhealthy(format!("fail{note}")),
    }
}

fn state_name(s: TtlState) -> &'static str {
    match s {
        TtlState::Pass => "pass",
        TtlState::Warn => "warn",
        TtlState::Fail => "fail",
    }
}

fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A Go duration (`1h2m3.5s`, `250ms`, `90s`) in milliseconds; must be positive.
fn parse_duration_ms(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: missing unit (ns, us, ms, s, m, h)"))?;
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("{s:?}: bad number"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor_ms = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            other => return Err(format!("{s:?}: unknown unit {other:?}")),
        };
        total += value * factor_ms;
        rest = &rest[unit_end..];
    }
    if total.is_nan() || !(1.0..1e15).contains(&total) {
        return Err(format!("{s:?}: must be at least 1ms"));
    }
    Ok(total as u64)
}

health_check::export!(Ttl);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    fn report(state: TtlState, age_ms: u64, note: &str) -> Option<TtlReport> {
        Some(TtlReport {
            state,
            note: note.into(),
            age_ms,
        })
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        for bad in ["", "30", "s", "-1s", "1x", "0s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports_within_the_ttl_decide() {
        let j = |r| judge("id", 30_000, r);
        assert_eq!(j(report(TtlState::Pass, 10, "ok")).message, "pass: ok");
        assert_eq!(
            j(report(TtlState::Pass, 10, "")).status,
            CheckStatus::Healthy
        );
        assert_eq!(
            j(report(TtlState::Warn, 10, "disk")).status,
            CheckStatus::Healthy
        );
        let fail = j(report(TtlState::Fail, 10, "db down"));
        assert_eq!(
            (fail.status, fail.message.as_str()),
            (CheckStatus::Unhealthy, "fail: db down")
        );
        let stale = j(report(TtlState::Pass, 31_000, ""));
        assert_eq!(stale.status, CheckStatus::Unhealthy);
        assert_eq!(
            stale.message,
            "TTL expired: last report (pass) 31s ago, TTL 30s"
        );
        let none = j(None);
        assert_eq!(none.status, CheckStatus::Unhealthy);
        assert!(
            none.message.contains("/api/services/id/ttl/pass"),
            "{}",
            none.message
        );
    }
}
