use super::AgentArgs;
use crate::config::{AgentConfig, LogSettings};
use std::process::ExitCode;

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::from_process(&args)?;
    init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidecar")
        .build()?;
    runtime.block_on(crate::agent::run(config))?;
    Ok(ExitCode::SUCCESS)
}

/// The daemon's log and the tools' warnings go to stderr, in text or JSON.
pub(super) fn init_logging(settings: &LogSettings) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.filter))
        .with_ansi(settings.colours)
        .with_writer(std::io::stderr);
    let _ = if settings.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
