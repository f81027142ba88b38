//! Running the verify and reload commands: through `bash -c` (Sidecar's commands are
//! shell lines), with a deadline, never inheriting our stdin, output captured.

use sidecar_plugin_sdk::text::truncate_with;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run {command:?}: {reason}")]
    Spawn { command: String, reason: String },
    #[error("{command:?} did not finish within {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("{command:?} failed ({status}): {output}")]
    Failed {
        command: String,
        status: String,
        output: String,
    },
}

/// Captured output of a successful command.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub output: String,
}

/// Runs `program args...` directly.
pub async fn run(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> Result<Ran, CommandError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let shown = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    finish(cmd, envs, shown, timeout).await
}

/// Runs a shell line with `/bin/bash -c` (Sidecar's way).
pub async fn run_shell(
    line: &str,
    envs: &[(&str, &str)],
    timeout: Duration,
) -> Result<Ran, CommandError> {
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-c").arg(line);
    finish(cmd, envs, line.to_string(), timeout).await
}

async fn finish(
    mut cmd: Command,
    envs: &[(&str, &str)],
    shown: String,
    timeout: Duration,
) -> Result<Ran, CommandError> {
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| CommandError::Spawn {
        command: shown.clone(),
        reason: e.to_string(),
    })?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(CommandError::Spawn {
                command: shown,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(CommandError::Timeout {
                command: shown,
                after: timeout,
            });
        }
    };
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    let output = output.trim().to_string();
    if out.status.success() {
        Ok(Ran { output })
    } else {
        Err(CommandError::Failed {
            command: shown,
            status: out.status.to_string(),
            output: truncate_with(&output, 4000, "..."),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_failure_and_timeout() {
        let t = Duration::from_secs(5);
        let ok = run_shell("echo hi; echo there >&2", &[], t)
            .await
            .expect("runs");
        assert_eq!(ok.output, "hi\nthere");
        let err = run_shell("echo bad; exit 3", &[], t)
            .await
            .expect_err("fails");
        assert!(
            matches!(&err, CommandError::Failed { output, .. } if output == "bad"),
            "{err}"
        );
        let err = run_shell("sleep 5", &[], Duration::from_millis(100))
            .await
            .expect_err("times out");
        assert!(matches!(err, CommandError::Timeout { .. }));
        let env = run_shell("echo $X", &[("X", "y")], t).await.expect("runs");
        assert_eq!(env.output, "y");
        assert!(matches!(
            run("/nonexistent/prog", &[], &[], t).await,
            Err(CommandError::Spawn { .. })
        ));
    }
}
