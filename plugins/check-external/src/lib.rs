//! Health-check type `External`: run a command on the host through the `process.run`
//! import (needs `exec = true` in the plugin's grants). Exit status 0 is healthy; any
//! other exit status, death by a signal, failure to start, or running past the check's
//! timeout is unhealthy, with the exit code / reason and the start of stderr as the message.
//!
//! # How the arguments are split
//!
//! The check's arguments become a program and its arguments with shell-like *quoting
//! only* (the `shell-words` crate) — there is no shell and no expansion of any kind:
//!
//! * Unquoted whitespace (space, tab, newline) separates words; runs of it count once,
//!   and leading/trailing whitespace is ignored.
//! * `'…'` groups characters literally: nothing inside single quotes is special.
//! * `"…"` groups characters; inside, a backslash escapes `"`, `\`, `$`, `` ` `` and a
//!   newline and is kept as a literal backslash before any other character.
//! * Outside quotes, a backslash makes the next character literal (`\ ` is a space
//!   inside a word, `\\` a backslash).
//! * Quoted and unquoted parts next to each other form one word (`--name='a b'` is
//!   `--name=a b`); `''` or `""` alone is an empty argument.
//! * `$VAR`, `~`, `*`, `;`, `|`, `&&`, `>`, backticks: passed through literally.
//! * A word that starts with `#` begins a comment: it and the rest are ignored.
//! * A trailing lone backslash is kept as it is; an unterminated quote is an error.
//!
//! The first word is the program (looked up in `PATH` unless it contains a `/`).
//! Sidecar split on single spaces (so `a  b` gave an empty argument and quotes were
//! passed through); for arguments without quotes, backslashes or repeated spaces the
//! result is the same. Use `sh -c '…'` explicitly if a shell is wanted.
//!
//! No settings.

mod words;

use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
use sidecar_plugin_sdk::{Settings, process, truncate};

/// How much of stderr (or stdout, when stderr is empty) goes into the message.
const MESSAGE_OUTPUT: usize = 512;

struct External;

impl HealthCheck for External {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        Settings::none(&settings, "External")
    }

    fn check(req: CheckRequest) -> Result<CheckResult, String> {
        let mut words = words::split(&req.args)?.into_iter();
        let program = words
            .next()
            .ok_or("External needs a command as its argument")?;
        let command = process::Command {
            program: program.clone(),
            args: words.collect(),
            timeout_ms: req.timeout_ms,
        };
        match process::run(&command) {
            Ok(out) => Ok(judge(&program, &out)),
            Err(process::Error::Timeout) => Ok(CheckResult::unhealthy(format!(
                "{program}: killed after {} ms (timeout)",
                req.timeout_ms
            ))),
            Err(process::Error::Spawn(why)) => Ok(CheckResult::unhealthy(format!(
                "{program}: could not start: {why}"
            ))),
            Err(process::Error::Denied(why)) => Err(format!("{program}: denied: {why}")),
        }
    }
}

fn judge(program: &str, out: &process::Output) -> CheckResult {
    if out.exit_code == Some(0) {
        return CheckResult::healthy(format!("{program}: exit status 0"));
    }
    let how = match out.exit_code {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    };
    let output = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    let text = String::from_utf8_lossy(output);
    let text = text.trim();
    if text.is_empty() {
        CheckResult::unhealthy(format!("{program}: {how}"))
    } else {
        CheckResult::unhealthy(format!(
            "{program}: {how}: {}",
            truncate(text, MESSAGE_OUTPUT)
        ))
    }
}

health_check::export!(External);

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_plugin_sdk::health_check::CheckStatus;

    fn output(code: Option<i32>, stderr: &str) -> process::Output {
        process::Output {
            exit_code: code,
            stdout: b"out".to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn exit_status_decides() {
        assert_eq!(
            judge("true", &output(Some(0), "")).status,
            CheckStatus::Healthy
        );
        let r = judge("check", &output(Some(3), "disk full\n"));
        assert_eq!(
            (r.status, r.message.as_str()),
            (CheckStatus::Unhealthy, "check: exit status 3: disk full")
        );
        assert_eq!(
            judge("check", &output(Some(1), "")).message,
            "check: exit status 1: out"
        );
        assert_eq!(
            judge("check", &output(None, "")).message,
            "check: killed by a signal: out"
        );
    }

    #[test]
    fn long_output_is_cut_on_a_char_boundary() {
        let r = judge("check", &output(Some(1), &"é".repeat(400)));
        let cut = r
            .message
            .strip_prefix("check: exit status 1: ")
            .expect("prefix");
        assert!(cut.ends_with('…') && cut.len() <= MESSAGE_OUTPUT + '…'.len_utf8());
    }
}
