use super::AgentArgs;
use crate::config::{AgentConfig, LogSettings};
use std::process::ExitCode;

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let config = AgentConfig::from_process(&args)?;
    let set_log_filter = init_reloadable_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidecar")
        .build()?;
    let reloader = crate::agent::Reloader {
        load: Box::new(move || AgentConfig::from_process(&args)),
        set_log_filter,
    };
    runtime.block_on(crate::agent::run(config, Some(reloader)))?;
    Ok(ExitCode::SUCCESS)
}

use crate::agent::SetLogFilter as SetFilter;

/// The daemon's log, whose filter SIGHUP can change.
fn init_reloadable_logging(settings: &LogSettings) -> SetFilter {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, reload};
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&settings.filter));
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(settings.colours)
        .with_writer(std::io::stderr);
    let format = if settings.json {
        format.json().boxed()
    } else {
        format.boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
    Box::new(move |filter: &str| {
        let parsed = EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
        handle.reload(parsed).map_err(|e| e.to_string())
    })
}

/// The tools' warnings go to stderr, in text or JSON (the same subscriber, never
/// reloaded).
pub(super) fn init_logging(settings: &LogSettings) {
    let _ = init_reloadable_logging(settings);
}
