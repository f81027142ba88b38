//! Test-only health check whose arguments choose how it misbehaves, so the host's
//! isolation can be tested against a real component:
//!
//! * `ok` – healthy (also: prints a line to stdout and one to stderr, which the host logs)
//! * `loop` – spins forever (the epoch deadline must kill it)
//! * `oom` – allocates 1 MiB chunks until the memory cap stops it
//! * `alloc <MiB>` – allocates and touches that much memory, frees it, then healthy
//! * `trap` – panics with the message `chaos: deliberate panic`
//! * `http <url>` – `http.get(url)`; healthy on any response, error on any failure
//!   (used to prove a plugin without the `http` grant is refused)
//! * `exec <program> [args…]` – `process.run`; healthy on exit 0 (exec-grant tests)
//! * `log [n]` – n times (default 1) one `log.log` and one `log.log-fields` call, then healthy
//!
//! Settings: `fail = "<message>"` makes `configure` fail with that message.

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::{http, log, process};

struct Chaos;

impl HealthCheck for Chaos {
    /// Other keys are ignored (on purpose: a test-only plugin that accepts anything).
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        match settings.into_iter().find(|(key, _)| key == "fail") {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let args = req.args.trim();
        let (verb, rest) = args.split_once(' ').unwrap_or((args, ""));
        match verb {
            "ok" => {
                println!("chaos: stdout line");
                eprintln!("chaos: stderr line");
                Ok(healthy("ok"))
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "alloc" => {
                let mib: usize = rest.parse().map_err(|_| "alloc needs a size in MiB")?;
                let buf = vec![1u8; mib << 20];
                std::hint::black_box(&buf);
                Ok(healthy(&format!("allocated {mib} MiB")))
            }
            "trap" => panic!("chaos: deliberate panic"),
            "http" => {
                let request = http::Request {
                    url: rest.to_string(),
                    headers: Vec::new(),
                    timeout_ms: req.timeout_ms,
                    max_redirects: 0,
                };
                match http::get(&request) {
                    Ok(resp) => Ok(healthy(&format!("HTTP {}", resp.status))),
                    Err(e) => Err(format!("http.get failed: {e:?}")),
                }
            }
            "exec" => {
                let mut words = rest.split_whitespace().map(String::from);
                let program = words.next().ok_or("exec needs a program")?;
                let cmd = process::Command {
                    program,
                    args: words.collect(),
                    timeout_ms: req.timeout_ms,
                };
                match process::run(&cmd) {
                    Ok(out) if out.exit_code == Some(0) => Ok(healthy("exit 0")),
                    Ok(out) => Ok(CheckResult::unhealthy(format!("exit {:?}", out.exit_code))),
                    Err(e) => Err(format!("process.run failed: {e:?}")),
                }
            }
            "log" => {
                let times: u32 = if rest.is_empty() {
                    1
                } else {
                    rest.parse().map_err(|_| "log takes a count")?
                };
                for _ in 0..times {
                    log::log(log::Level::Info, "chaos: plain log line");
                    log::log_fields(
                        log::Level::Warn,
                        "chaos: structured",
                        &[("k".to_string(), "v".to_string())],
                    );
                }
                Ok(healthy("logged"))
            }
            other => Err(format!("unknown chaos verb {other:?}")),
        }
    }
}

fn healthy(message: &str) -> CheckResult {
    CheckResult::healthy(message)
}

health_check::export!(Chaos);
