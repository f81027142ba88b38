//! `sidecar plugins list|check|name`: try plugins without a cluster.
//!
//! Exit codes: `check` 0 healthy, 1 unhealthy, 2 error; `name` and `list` 0, or 2 on
//! error. Errors go to stderr.

use super::{PluginsCommand, PluginsFileArg};
use crate::config::PluginsSetup;
use sidecar_catalog::Service;
use sidecar_plugin_host::{
    CheckRequest, CheckStatus, ContainerInfo, LoadedPlugins, PluginInfo, PluginSource,
    PluginStatus, Runtime,
};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ERROR: u8 = 2;

pub fn run(cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    // Warnings (denied grants, crashes, guest stderr) on stderr; `RUST_LOG` overrides.
    super::agent::init_logging(&crate::config::LogSettings::for_tools());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        match cmd {
            PluginsCommand::List(file) => list(&file).await,
            PluginsCommand::Check {
                file,
                advertise_ip,
                check_type,
                args,
                timeout,
            } => check(&file, advertise_ip, &check_type, args, timeout).await,
            PluginsCommand::Name {
                file,
                labels,
                container_name,
                image,
            } => name(&file, &labels, &container_name, &image).await,
        }
    });
    Ok(code.unwrap_or_else(|e| {
        eprintln!("sidecar: {e:#}");
        ExitCode::from(ERROR)
    }))
}

/// Loads `setup`'s plugins; the load time for `list`'s footer.
async fn load(setup: PluginsSetup, load_unused: bool) -> anyhow::Result<(LoadedPlugins, Duration)> {
    let mut setup = setup;
    setup.options.load_unused = load_unused;
    let started = Instant::now();
    let loaded = Runtime::load(&setup.config, &setup.options).await?;
    Ok((loaded, started.elapsed()))
}

async fn list(file: &PluginsFileArg) -> anyhow::Result<ExitCode> {
    // As the agent loads them: the enabled proxy drivers' emitters are in use.
    let setup = PluginsSetup::as_agent_from_process(file.plugins.as_deref())?;
    let (loaded, elapsed) = load(setup, true).await?;
    let rows: Vec<Vec<String>> = loaded.describe().iter().map(row).collect();
    print!(
        "{}",
        super::table::render(
            &[
                "NAME", "KIND", "WIT", "SOURCE", "GRANTS", "STATUS", "USED AS"
            ],
            &rows,
            &[],
        )
    );
    let (precompiled, from_cache, compiled) = loaded.code_sources();
    eprintln!(
        "loaded {} plugins in {:.1} ms ({precompiled} precompiled, {from_cache} from the compile cache, \
         {compiled} compiled; {:?} allocator, compile cache {})",
        rows.len(),
        elapsed.as_secs_f64() * 1e3,
        loaded.allocator(),
        loaded
            .cache_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "off".into())
    );
    Ok(ExitCode::SUCCESS)
}

fn row(p: &PluginInfo) -> Vec<String> {
    let source = match &p.source {
        PluginSource::Embedded => "embedded".to_string(),
        PluginSource::File(path) => path.display().to_string(),
    };
    let mut grants = Vec::new();
    if !p.http.is_empty() {
        grants.push(format!("http={}", p.http.join(",")));
    }
    if p.exec {
        grants.push("exec".to_string());
    }
    if !p.net.is_empty() {
        grants.push(format!("net={}", p.net.join(",")));
    }
    if let Some(ca) = &p.ca_file {
        grants.push(format!("ca={}", ca.display()));
    }
    if let Some(token) = &p.bearer_token_file {
        grants.push(format!("token={}", token.display()));
    }
    let status = match &p.status {
        PluginStatus::Ready => "ready".to_string(),
        PluginStatus::Unused => "unused".to_string(),
        PluginStatus::Disabled(why) => format!("disabled: {why}"),
    };
    vec![
        p.name.clone(),
        p.kind.to_string(),
        p.wit_version.clone(),
        source,
        if grants.is_empty() {
            "-".into()
        } else {
            grants.join(" ")
        },
        status,
        if p.uses.is_empty() {
            "-".into()
        } else {
            p.uses.join(", ")
        },
    ]
}

async fn check(
    file: &PluginsFileArg,
    advertise_ip: Option<String>,
    check_type: &str,
    args: String,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    // The agent's advertise IP (or `--advertise-ip`): `{{ host }}` in the arguments and
    // the `{advertise_ip}` grant stand for it, so a check of this host passes the
    // allow-list as it does in the agent.
    let setup = PluginsSetup::from_process(file.plugins.as_deref(), advertise_ip)?;
    let host_ip = setup
        .options
        .advertise_ip
        .clone()
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let (loaded, _) = load(setup, false).await?;
    let service = Service {
        name: "sidecar-cli".into(),
        id: "cli".into(),
        ..Service::default()
    };
    let Some((_, checker)) = loaded.checker(check_type) else {
        let known: Vec<&str> = loaded.checks.keys().map(String::as_str).collect();
        eprintln!(
            "sidecar: error: unknown check type {check_type:?} (known: {})",
            known.join(", ")
        );
        return Ok(ExitCode::from(ERROR));
    };
    match checker
        .check(CheckRequest {
            service,
            args,
            timeout,
            host_ip,
        })
        .await
    {
        Ok(outcome) if outcome.status == CheckStatus::Healthy => {
            println!("healthy: {}", outcome.message);
            Ok(ExitCode::SUCCESS)
        }
        Ok(outcome) => {
            println!("unhealthy: {}", outcome.message);
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("sidecar: error: {e}");
            Ok(ExitCode::from(ERROR))
        }
    }
}

async fn name(
    file: &PluginsFileArg,
    labels: &[String],
    container_name: &str,
    image: &str,
) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::new();
    for l in labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--label {l:?}: expected KEY=VALUE"))?;
        parsed.push((k.to_string(), v.to_string()));
    }
    let (loaded, _) = load(
        PluginsSetup::from_process(file.plugins.as_deref(), None)?,
        false,
    )
    .await?;
    let container = ContainerInfo {
        id: "0000000000000000".into(),
        name: if container_name.starts_with('/') {
            container_name.to_string()
        } else {
            format!("/{container_name}")
        },
        image: image.to_string(),
        labels: parsed,
        ports: Vec::new(),
    };
    match loaded.namer.name(&container).await {
        Ok(name) => {
            println!("{name}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("sidecar: error: {e}");
            Ok(ExitCode::from(ERROR))
        }
    }
}
