use super::MembersArgs;
use std::process::ExitCode;

pub fn run(_args: MembersArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`members` is not built yet")
}
