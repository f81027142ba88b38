//! The host side of the `sidecar:plugin` imports (`log`, `clock`, `http`, `process`,
//! `net`, `local-services`), and the one `Linker` every plugin is instantiated with.

mod clock;
mod http;
mod local_services;
pub(crate) mod log;
mod net;
mod process;

use super::state::HostState;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// Bindings of the imports only (world `plugin-host`). The per-kind worlds map their
/// imports onto these modules (`with:`), so there is one `Host` implementation.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "plugin-host",
        path: "../../../wit",
        imports: {
            "sidecar:plugin/http.get": async,
            "sidecar:plugin/http.get-with-bearer-token": async,
            "sidecar:plugin/process.run": async,
            "sidecar:plugin/net.tcp-connect": async,
            "sidecar:plugin/net.grpc-health": async,
        },
    });
}

pub(crate) use bindings::sidecar::plugin::types;
pub(crate) use http::{PluginHttp, client as http_client};

impl types::Host for HostState {}

/// WASI 0.2 (Rust std and componentize-py guests import it even when they never print;
/// the context grants nothing) plus our imports. The linker is semver-aware: a plugin
/// built against `sidecar:plugin@0.1.0`, `@0.1.1` or `@0.1.2` links against these `@0.1.3`
/// definitions.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::PluginHost::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}
