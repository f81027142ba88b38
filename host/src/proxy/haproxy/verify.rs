//! Verification of a candidate config before it may replace the live one.

use super::command::{self, CommandError};
use super::config::HaproxyConfig;
use std::path::Path;
use std::time::Duration;

/// `haproxy -c` takes ~50 ms for small configs and ~0.25 s for 10k servers.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks `candidate` with `HAPROXY_VERIFY_COMMAND` (the live path in it replaced by the
/// candidate's) or `haproxy -c -f <candidate>`.
pub async fn verify(cfg: &HaproxyConfig, candidate: &Path) -> Result<(), CommandError> {
    let cand = candidate.display().to_string();
    let envs = [("SIDECAR_HAPROXY_CANDIDATE", cand.as_str())];
    match &cfg.verify_command {
        Some(line) => {
            let live = cfg.config_file.display().to_string();
            let line = if live.is_empty() {
                line.clone()
            } else {
                line.replace(&live, &cand)
            };
            command::run_shell(&line, &envs, VERIFY_TIMEOUT).await?;
        }
        None => {
            command::run(&cfg.binary, &["-c", "-f", &cand], &envs, VERIFY_TIMEOUT).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[tokio::test]
    async fn custom_command_sees_the_candidate() {
        let dir = tempfile::tempdir().expect("tmp");
        let live = dir.path().join("h.cfg");
        let cand = dir.path().join(".h.cfg.sidecar-candidate");
        std::fs::write(&cand, "ok").expect("write");
        let mut cfg = HaproxyConfig::load(&Env::default()).expect("defaults");
        cfg.config_file = live.clone();
        cfg.verify_command = Some(format!("grep -q ok {}", live.display()));
        verify(&cfg, &cand)
            .await
            .expect("candidate checked, not the live file");
        std::fs::write(&cand, "bad").expect("write");
        assert!(verify(&cfg, &cand).await.is_err());
    }
}
