//! Health-check type `Heartbeat`: healthy while the file named in the check's arguments
//! was modified within the last `max-age-s` seconds (setting, default 30), for services
//! that touch a file while they work. Needs `grants = { exec = true }` (it runs `stat`).

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::{Settings, clock, process};
use std::cell::Cell;

thread_local! {
    static MAX_AGE_S: Cell<i64> = const { Cell::new(30) };
}

struct Heartbeat;

impl HealthCheck for Heartbeat {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&settings, &["max-age-s"])?;
        if let Some(max) = s.parse("max-age-s", "a number of seconds")? {
            MAX_AGE_S.with(|m| m.set(max));
        }
        Ok(())
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let path = req.args.trim();
        if path.is_empty() {
            return Err("Heartbeat needs a file path as its argument".into());
        }
        let cmd = process::Command {
            program: "stat".into(),
            args: vec!["-c".into(), "%Y".into(), path.into()],
            timeout_ms: req.timeout_ms,
        };
        let out = process::run(&cmd).map_err(|e| format!("stat {path}: {e:?}"))?;
        if out.exit_code != Some(0) {
            return Ok(CheckResult::unhealthy(format!("{path}: missing")));
        }
        let modified: i64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("stat {path}: unexpected output"))?;
        let age = clock::now().seconds - modified;
        let max = MAX_AGE_S.with(Cell::get);
        Ok(if age <= max {
            CheckResult::healthy(format!("{path}: {age} s old"))
        } else {
            CheckResult::unhealthy(format!("{path}: {age} s old (more than {max} s)"))
        })
    }
}

health_check::export!(Heartbeat);
