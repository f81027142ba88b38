use super::PluginsCommand;
use std::process::ExitCode;

pub fn run(_args: PluginsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`plugins` is not built yet")
}
