//! `process.run`: run a program for a plugin that has `exec = true`.
//!
//! No shell; stdin is /dev/null; the daemon's working directory; an empty environment
//! but for a standard `PATH` ([`SAFE_PATH`]), so no secret the daemon holds in its
//! environment (gossip keys, API token) reaches a check's program. The
//! program runs in its own process group, and the whole group is killed (SIGKILL) when
//! the deadline passes or the call is abandoned, so `sh -c 'sleep 100 &'` cannot leave
//! stragglers. stdout/stderr are each kept up to [`OUTPUT_CAP`] and drained beyond it.

use super::bindings::sidecar::plugin::process::{self, Command, Error, Output};
use crate::state::HostState;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The only variable a program gets: where the usual tools are.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of stdout and of stderr handed back.
pub const OUTPUT_CAP: usize = 64 * 1024;

impl process::Host for HostState {
    async fn run(&mut self, cmd: Command) -> Result<Output, Error> {
        let plugin = self.plugin.clone();
        if !plugin.grants.exec {
            let why = "no exec grant (set `grants.exec = true` for this plugin in plugins.toml)"
                .to_string();
            tracing::warn!(plugin = %plugin.name, program = %cmd.program, "process.run denied: {why}");
            return Err(Error::Denied(why));
        }
        run(&cmd, self.io_budget(cmd.timeout_ms)).await
    }
}

/// Kills the process group when dropped, unless disarmed.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

pub(crate) async fn run(cmd: &Command, budget: Duration) -> Result<Output, Error> {
    if cmd.program.is_empty() {
        return Err(Error::Spawn("empty program name".into()));
    }
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Spawn(format!("{}: {e}", cmd.program)))?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let finished = tokio::time::timeout(budget, async {
        tokio::join!(read_capped(stdout), read_capped(stderr), child.wait())
    })
    .await;
    match finished {
        Ok((stdout, stderr, status)) => {
            let status = status.map_err(|e| Error::Spawn(format!("{}: wait: {e}", cmd.program)))?;
            // The group may still hold stragglers that inherited nothing we wait for.
            drop(guard);
            Ok(Output {
                exit_code: status.code(),
                stdout,
                stderr,
            })
        }
        Err(_) => {
            if let Some(pgid) = guard.0.take() {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            let _ = child.kill().await;
            Err(Error::Timeout)
        }
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn cmd(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            timeout_ms: 0,
        }
    }

    #[tokio::test]
    async fn exit_codes_and_output() {
        let out = run(
            &cmd("/bin/sh", &["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await;
        let out = out.expect("ran");
        assert_eq!(
            (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
        let missing = run(&cmd("/nonexistent/program", &[]), Duration::from_secs(5)).await;
        assert!(matches!(missing, Err(Error::Spawn(m)) if m.contains("/nonexistent/program")));
    }

    #[tokio::test]
    async fn programs_get_an_empty_environment_but_path() {
        // The test process has plenty of variables (CARGO_*, HOME, ...); none may pass.
        let out = run(&cmd("env", &[]), Duration::from_secs(5))
            .await
            .expect("ran");
        let env = String::from_utf8_lossy(&out.stdout);
        assert_eq!(env.trim(), format!("PATH={SAFE_PATH}"));
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let start = Instant::now();
        let r = run(
            &cmd("/bin/sh", &["-c", "sleep 30 & sleep 30"]),
            Duration::from_millis(200),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout)));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "returned at the deadline, not when sleep ended"
        );
    }

    #[tokio::test]
    async fn output_is_capped() {
        let out = run(
            &cmd("/bin/sh", &["-c", "head -c 200000 /dev/zero"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(out.expect("ran").stdout.len(), OUTPUT_CAP);
    }
}
