use super::AgentArgs;
use crate::config::Env;
use crate::config::agent::CoreConfig;
use std::process::ExitCode;

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let core = CoreConfig::load(&env, &args)?;
    init_logging(&core.logging_level, core.logging_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidecar")
        .build()?;
    runtime.block_on(crate::agent::run(core, env, args))?;
    Ok(ExitCode::SUCCESS)
}

/// `SIDECAR_LOGGING_LEVEL` (debug/info/warn/error; anything else is info, as in Sidecar),
/// overridden by `RUST_LOG` when that is set.
fn init_logging(level: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match level.to_ascii_lowercase().as_str() {
        l @ ("trace" | "debug" | "info" | "warn" | "error") => l.to_string(),
        _ => "info".to_string(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(super::log_colours())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
