use super::AgentArgs;
use std::process::ExitCode;

pub fn run(_args: AgentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`agent` is not built yet")
}
