//! `sidecar envoy-bootstrap`: prints an Envoy bootstrap that takes everything from this
//! host's xDS server.

use super::EnvoyBootstrapArgs;
use crate::proxy::xds::bootstrap::{BootstrapOptions, bootstrap_yaml};
use std::net::SocketAddr;
use std::process::ExitCode;

pub fn run(args: EnvoyBootstrapArgs) -> anyhow::Result<ExitCode> {
    let (cfg, node_name) = crate::config::proxy::envoy_from_process()?;
    let mut ads = cfg.grpc_addr();
    if ads.ip().is_unspecified() {
        ads.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    if let Some(a) = &args.ads {
        ads = a
            .parse()
            .map_err(|_| anyhow::anyhow!("--ads {a:?} is not ip:port"))?;
    }
    let admin: Option<SocketAddr> = match args.admin.as_deref() {
        None | Some("") | Some("none") => None,
        Some(a) => Some(
            a.parse()
                .map_err(|_| anyhow::anyhow!("--admin {a:?} is not ip:port"))?,
        ),
    };
    let node_id = args.node_id.clone().unwrap_or(node_name);
    print!(
        "{}",
        bootstrap_yaml(&BootstrapOptions {
            node_id,
            node_cluster: args.cluster.clone(),
            ads,
            admin,
        })
    );
    Ok(ExitCode::SUCCESS)
}
