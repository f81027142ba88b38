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
    fn setter<L, S>(handle: tracing_subscriber::reload::Handle<L, S>) -> SetFilter
    where
        L: From<tracing_subscriber::EnvFilter> + Send + Sync + 'static,
        S: 'static,
    {
        Box::new(move |filter: &str| {
            let parsed =
                tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
            handle.reload(parsed).map_err(|e| e.to_string())
        })
    }
    let filter = tracing_subscriber::EnvFilter::new(&settings.filter);
    if settings.json {
        let builder = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_ansi(settings.colours)
            .with_writer(std::io::stderr)
            .with_filter_reloading();
        let set = setter(builder.reload_handle());
        let _ = builder.try_init();
        set
    } else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(settings.colours)
            .with_writer(std::io::stderr)
            .with_filter_reloading();
        let set = setter(builder.reload_handle());
        let _ = builder.try_init();
        set
    }
}

/// The tools' warnings go to stderr, in text or JSON.
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
