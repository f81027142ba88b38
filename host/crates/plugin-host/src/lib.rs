//! `sidecar-plugin-host`: policy plugins. The kinds as Rust traits ([`api`]), the
//! WebAssembly runtime that implements them for components, and `plugins.toml`.
//!
//! It takes typed options and never reads the process environment: the daemon's
//! configuration module reads the environment and hands the results down.
//!
//! Start with [`Runtime::load`]: it turns a [`PluginsConfig`]
//! into [`LoadedPlugins`] (a namer, check types, discovery sources, emitters). Module map:
//!
//! | module | job |
//! |---|---|
//! | `engine` | the one wasmtime `Engine`: epochs + ticker, pooling allocator with fallback |
//! | `engine_config` | the code-shaping `Config`, shared with build.rs (precompiled defaults) |
//! | `cache` | on-disk cache of compiled components |
//! | `embedded` | default plugins built and precompiled by build.rs, and their defaults |
//! | `inspect` | kind and WIT version of a component, read from its type |
//! | `grants`, `limits` | capabilities (http allow-list, exec) and resource limits |
//! | `state`, `output` | per-store host state; guest stdout/stderr into the log |
//! | `host_imports` | `log`, `clock`, `http`, `process` imports and the linker |
//! | `pool`, `breaker` | warm instances, deadlines, crash handling, circuit breaker |
//! | `world` | a WIT world's bindings as the pool uses them (`plugin_world!`) |
//! | `namer`, `check`, `discovery`, `emitter` | one WIT world each, implementing the traits |
//! | `registry` | loading, `LoadedPlugins`, `describe()` |
//! | `plugins_toml` | the plugins.toml schema, parsed with line-numbered errors |

pub mod api;
mod breaker;
pub mod cache;
mod check;
mod convert;
mod discovery;
pub mod embedded;
mod emitter;
pub mod engine;
mod engine_config;
pub mod grants;
mod host_imports;
mod inspect;
mod kind;
pub mod limits;
mod namer;
mod output;
pub mod plugins_toml;
mod pool;
mod registry;
mod state;
mod world;

pub use api::*;
pub use breaker::BreakerPolicy;
pub use cache::{CacheOutcome, CacheSetting};
pub use embedded::built_wasm_dir;
pub use engine::{Allocator, AllocatorChoice};
pub use inspect::HOST_WIT_VERSION;
pub use kind::Kind;
pub use plugins_toml::{
    NamerVars, PluginDefaults, PluginSource, PluginsConfig, PluginsConfigError,
};
pub use pool::PoolStats;
pub use registry::{
    LoadOptions, LoadedDiscovery, LoadedPlugins, PluginInfo, PluginStatus, Runtime,
};
