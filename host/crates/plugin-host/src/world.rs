//! How one WIT world's generated bindings plug into the instance pool.
//!
//! Every plugin world imports the same host interfaces (so one linker serves them all)
//! and exports `lifecycle`; [`plugin_world!`] generates a world's bindings with those
//! shared and implements [`World`] for them, so each world's module only adds its own
//! trait (`HealthChecker`, `Namer`, ...).

use super::state::HostState;
use futures::future::BoxFuture;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// One WIT world's generated bindings, as the pool needs them.
pub(crate) trait World: Sized + Send + Sync + 'static {
    type Pre: Send + Sync + 'static;

    fn new_pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;

    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<HostState>,
    ) -> BoxFuture<'a, wasmtime::Result<Self>>;

    #[allow(clippy::ptr_arg, reason = "the generated bindings take &Vec")]
    fn configure<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
        settings: &'a Vec<(String, String)>,
    ) -> BoxFuture<'a, wasmtime::Result<Result<(), String>>>;
}

/// `plugin_world!("health-check", HealthCheck, HealthCheckPre)` expands to a private
/// `bindings` module for the world (async exports, host imports shared with
/// `host_imports::bindings`), the aliases `Bindings` and `BindingsPre`, and
/// `impl World for Bindings`.
macro_rules! plugin_world {
    ($world:tt, $bindings:ident, $pre:ident) => {
        mod bindings {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../../../wit",
                exports: { default: async },
                with: {
                    "sidecar:plugin/types": crate::host_imports::bindings::sidecar::plugin::types,
                    "sidecar:plugin/log": crate::host_imports::bindings::sidecar::plugin::log,
                    "sidecar:plugin/clock": crate::host_imports::bindings::sidecar::plugin::clock,
                    "sidecar:plugin/http": crate::host_imports::bindings::sidecar::plugin::http,
                    "sidecar:plugin/process": crate::host_imports::bindings::sidecar::plugin::process,
                    "sidecar:plugin/net": crate::host_imports::bindings::sidecar::plugin::net,
                    "sidecar:plugin/local-services": crate::host_imports::bindings::sidecar::plugin::local_services,
                },
            });
        }

        use bindings::{$bindings as Bindings, $pre as BindingsPre};

        impl $crate::world::World for Bindings {
            type Pre = BindingsPre<$crate::state::HostState>;

            fn new_pre(
                pre: wasmtime::component::InstancePre<$crate::state::HostState>,
            ) -> wasmtime::Result<Self::Pre> {
                BindingsPre::new(pre)
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut wasmtime::Store<$crate::state::HostState>,
            ) -> futures::future::BoxFuture<'a, wasmtime::Result<Self>> {
                Box::pin(pre.instantiate_async(store))
            }

            fn configure<'a>(
                &'a self,
                store: &'a mut wasmtime::Store<$crate::state::HostState>,
                settings: &'a Vec<(String, String)>,
            ) -> futures::future::BoxFuture<'a, wasmtime::Result<Result<(), String>>> {
                Box::pin(
                    self.sidecar_plugin_lifecycle()
                        .call_configure(store, settings),
                )
            }
        }
    };
}

pub(crate) use plugin_world;
