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
                check_type,
                args,
                timeout,
            } => check(&file, &check_type, args, timeout).await,
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

async fn load(
    file: &PluginsFileArg,
    load_unused: bool,
) -> anyhow::Result<(LoadedPlugins, Duration)> {
    let mut setup = PluginsSetup::from_process(file.plugins.as_deref())?;
    setup.options.load_unused = load_unused;
    let started = Instant::now();
    let loaded = Runtime::load(&setup.config, &setup.options).await?;
    Ok((loaded, started.elapsed()))
}

async fn list(file: &PluginsFileArg) -> anyhow::Result<ExitCode> {
    let (loaded, elapsed) = load(file, true).await?;
    let rows: Vec<[String; 7]> = loaded.describe().iter().map(row).collect();
    let header = [
        "NAME", "KIND", "WIT", "SOURCE", "GRANTS", "STATUS", "USED AS",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    eprintln!(
        "loaded {} plugins in {:.1} ms ({:?} allocator, compile cache {})",
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

fn row(p: &PluginInfo) -> [String; 7] {
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
    let status = match &p.status {
        PluginStatus::Ready => "ready".to_string(),
        PluginStatus::Unused => "unused".to_string(),
        PluginStatus::Disabled(why) => format!("disabled: {why}"),
    };
    [
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
    check_type: &str,
    args: String,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let (loaded, _) = load(file, false).await?;
    let host_ip = PluginsSetup::from_process(file.plugins.as_deref())?
        .options
        .advertise_ip
        .unwrap_or_else(|| "127.0.0.1".to_string());
    let service = Service {
        name: "sidecar-cli".into(),
        id: "cli".into(),
        ..Service::default()
    };
    let checker = loaded.checker(check_type, &service.name);
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
    let (loaded, _) = load(file, false).await?;
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
