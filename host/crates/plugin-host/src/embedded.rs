//! The default plugins, compiled from `plugins/` by build.rs and embedded in the binary,
//! and the defaults that go with them (check-type names, grants).
//!
//! Each is embedded twice: as its `.wasm` and as machine code that build.rs precompiled
//! with the daemon's own engine settings (`engine_config`) at the default memory limit
//! and an x86-64-v2 CPU baseline. [`load`] uses the machine code, so no start compiles
//! a default plugin; when wasmtime refuses it (a CPU without those features, a larger
//! `memory_mb` in plugins.toml, or a corrupted copy) it logs why and compiles the
//! `.wasm` through the compile cache, as for any other plugin.

use crate::cache::{CacheOutcome, CompileCache};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

/// One embedded `.wasm` component.
pub(crate) struct EmbeddedPlugin {
    pub name: &'static str,
    pub description: &'static str,
    /// sha256 of `wasm`, hex; computed at build time so the compile-cache lookup at
    /// start does not hash the bytes again.
    pub sha256: &'static str,
    pub wasm: &'static [u8],
    /// `Engine::precompile_component` output for the daemon's engine configuration.
    pub precompiled: &'static [u8],
    /// xxh3-128 of `precompiled`, so a damaged copy is never handed to wasmtime.
    pub precompiled_xxh3: u128,
}

/// Page alignment for the precompiled copies, so their code can run in place.
#[repr(C, align(4096))]
pub(crate) struct PageAligned<T: ?Sized>(pub T);

include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));

/// The namer used when neither plugins.toml nor `SERVICES_NAMER` choose one.
pub const DEFAULT_NAMER: &str = "namer-label";

/// Sidecar's check types, ours (`Tcp`, `GrpcHealth`, `Ttl`, `Alias`), and the plugins
/// that implement them; plugins.toml can remap them and add its own names. A type
/// nobody registered is an error (the service stays UNKNOWN), not Sidecar's silent
/// `HttpGet`.
pub const DEFAULT_CHECKS: [(&str, &str); 7] = [
    ("HttpGet", "check-httpget"),
    ("External", "check-external"),
    ("AlwaysSuccessful", "check-always"),
    ("Tcp", "check-tcp"),
    ("GrpcHealth", "check-grpc"),
    ("Ttl", "check-ttl"),
    ("Alias", "check-alias"),
];

/// `http` grant of `check-httpget` unless plugins.toml sets one: this host only, which
/// covers Sidecar's usual check URLs (`http://{{ host }}:…`, `http://:port/…`).
pub const HTTPGET_DEFAULT_HTTP: [&str; 5] = [
    "127.0.0.1:*",
    "localhost:*",
    "[::1]:*",
    "{advertise_ip}:*",
    "{hostname}:*",
];

/// `net` grant of `check-tcp` and `check-grpc` unless plugins.toml sets one: this host
/// only, as for `check-httpget`.
pub const NET_CHECKS_DEFAULT_NET: [&str; 5] = HTTPGET_DEFAULT_HTTP;

/// Default `net` grant of an embedded plugin.
pub(crate) fn default_net_grant(name: &str) -> &'static [&'static str] {
    match name {
        "check-tcp" | "check-grpc" => &NET_CHECKS_DEFAULT_NET,
        _ => &[],
    }
}

/// The compiled component of an embedded plugin: its precompiled machine code when the
/// engine can run it, else compiled (through the cache). `fits` is false when the
/// engine's memory reservation differs from the one the artifacts were compiled for (a
/// plugin with a larger `memory_mb`): then they cannot load and are not even tried.
/// CPU-bound: call from a blocking thread.
pub(crate) fn load(
    engine: &Engine,
    cache: &CompileCache,
    plugin: &EmbeddedPlugin,
    fits: bool,
) -> anyhow::Result<(Component, CacheOutcome)> {
    if fits {
        match deserialize(engine, plugin) {
            Ok(component) => return Ok((component, CacheOutcome::Precompiled)),
            Err(why) => tracing::warn!(
                plugin = plugin.name,
                %why,
                "plugins: cannot use the precompiled built-in plugin, compiling it instead"
            ),
        }
    }
    cache.load(engine, plugin.name, plugin.wasm, plugin.sha256)
}

fn deserialize(engine: &Engine, plugin: &EmbeddedPlugin) -> Result<Component, String> {
    if xxhash_rust::xxh3::xxh3_128(plugin.precompiled) != plugin.precompiled_xxh3 {
        return Err("checksum mismatch (the embedded copy is damaged)".into());
    }
    let bytes = plugin.precompiled;
    // SAFETY: `Component::deserialize` runs the bytes as machine code, so they must come
    // from `Engine::precompile_component`. These do: build.rs produced them from our own
    // plugins with wasmtime and embedded them in this binary, and their checksum matches.
    // wasmtime itself refuses them unless its version, the engine's settings and the
    // CPU's features fit (the error says which).
    if crate::engine::runs_code_in_place()
        && (bytes.as_ptr() as usize).is_multiple_of(4096)
        && claim_in_place(plugin.name)
    {
        // In place: the code runs from the binary's own read-only pages, which the
        // engine's code memory makes executable, instead of from a private copy. Those
        // pages belong to the page cache: only the parts in use are resident, and they
        // can be handed back after start-up (`release_startup_pages` in the daemon).
        // SAFETY: as above; in addition the memory is `'static` and never written.
        unsafe { Component::deserialize_raw(engine, std::ptr::NonNull::from(bytes)) }
            .map_err(|e| format!("{e:#}"))
    } else {
        unsafe { Component::deserialize(engine, bytes) }.map_err(|e| format!("{e:#}"))
    }
}

/// Whether this process may still run `name`'s embedded code in place: only once.
/// wasmtime registers every loaded code image by its address, process-wide, and one
/// address cannot hold two images; a second engine (a reload of plugins.toml, the CLI's
/// own runtime in tests) gets a private copy instead.
fn claim_in_place(name: &'static str) -> bool {
    static TAKEN: parking_lot::Mutex<std::collections::BTreeSet<&str>> =
        parking_lot::Mutex::new(std::collections::BTreeSet::new());
    TAKEN.lock().insert(name)
}

pub(crate) fn find(name: &str) -> Option<&'static EmbeddedPlugin> {
    EMBEDDED.iter().find(|p| p.name == name)
}

/// Names of the embedded plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|p| p.name)
}

pub fn is_embedded(name: &str) -> bool {
    find(name).is_some()
}

/// Default grants of an embedded plugin: (`http` patterns, `exec`).
pub(crate) fn default_grants(name: &str) -> (&'static [&'static str], bool) {
    match name {
        "check-httpget" => (&HTTPGET_DEFAULT_HTTP, false),
        "check-external" => (&[], true),
        _ => (&[], false),
    }
}

/// Where build.rs put every guest it built, test-only ones (`chaos`, `check-v010`)
/// included: `<workspace>/target/plugins/wasm32-wasip2/release`.
pub fn built_wasm_dir() -> &'static Path {
    Path::new(WASM_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, AllocatorChoice, EngineSizing};
    use crate::engine_config;

    /// The daemon's engine when every plugin keeps the default limits.
    fn default_engine() -> Engine {
        let sizing = EngineSizing {
            max_memory_bytes: (engine_config::DEFAULT_MEMORY_MB << 20) as usize,
            total_instances: 64,
        };
        engine::build(AllocatorChoice::Auto, sizing)
            .expect("engine")
            .0
    }

    fn cache() -> (tempfile::TempDir, CompileCache, Engine) {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = default_engine();
        let cache = CompileCache::open(&engine, Some(dir.path().to_path_buf()));
        (dir, cache, engine)
    }

    /// A copy of an embedded plugin with other precompiled bytes.
    fn with_artifact(name: &'static str, artifact: Vec<u8>) -> EmbeddedPlugin {
        let plugin = find(name).expect("embedded");
        let precompiled: &'static [u8] = Box::leak(artifact.into_boxed_slice());
        EmbeddedPlugin {
            name: plugin.name,
            description: plugin.description,
            sha256: plugin.sha256,
            wasm: plugin.wasm,
            precompiled,
            precompiled_xxh3: xxhash_rust::xxh3::xxh3_128(precompiled),
        }
    }

    #[test]
    fn every_default_plugin_loads_precompiled_into_the_daemons_engine() {
        let (dir, cache, engine) = cache();
        for plugin in EMBEDDED {
            assert!(
                (plugin.precompiled.as_ptr() as usize).is_multiple_of(4096),
                "{}: page-aligned, so its code runs in place",
                plugin.name
            );
            let (_, outcome) = load(&engine, &cache, plugin, true).expect("load");
            assert_eq!(outcome, CacheOutcome::Precompiled, "{}", plugin.name);
        }
        let entries = std::fs::read_dir(dir.path().join("plugins"))
            .expect("cache dir")
            .count();
        assert_eq!(entries, 0, "nothing was compiled into the cache");
    }

    #[test]
    fn a_damaged_artifact_falls_back_to_compiling() {
        let (_dir, cache, engine) = cache();
        let original = find("check-always").expect("embedded");
        let mut bytes = original.precompiled.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let mut damaged = with_artifact("check-always", bytes);
        damaged.precompiled_xxh3 = original.precompiled_xxh3; // recorded at build time
        let Err(refused) = deserialize(&engine, &damaged) else {
            panic!("a damaged artifact was accepted")
        };
        assert!(refused.contains("checksum"), "{refused}");
        let (_, outcome) = load(&engine, &cache, &damaged, true).expect("compiled instead");
        assert_eq!(outcome, CacheOutcome::Compiled);
        // Not ours at all (valid checksum, but not wasmtime output): wasmtime refuses it.
        let garbage = with_artifact("check-always", b"\x7fELF not an artifact".to_vec());
        let (_, outcome) = load(&engine, &cache, &garbage, true).expect("from the cache");
        assert_eq!(outcome, CacheOutcome::Hit, "compiled above, cached since");
    }

    #[test]
    fn an_artifact_for_other_engine_settings_falls_back_to_compiling() {
        let (_dir, cache, engine) = cache();
        let plugin = find("check-always").expect("embedded");
        // Compiled for a 128 MiB reservation (what a larger memory_mb would give).
        let other = Engine::new(&engine_config::code_config(128 << 20)).expect("engine");
        let artifact = other.precompile_component(plugin.wasm).expect("precompile");
        let mismatched = with_artifact("check-always", artifact);
        let Err(refused) = deserialize(&engine, &mismatched) else {
            panic!("an artifact for other settings was accepted")
        };
        assert!(refused.contains("memory reservation"), "{refused}");
        let (_, outcome) = load(&engine, &cache, &mismatched, true).expect("compiled instead");
        assert_eq!(outcome, CacheOutcome::Compiled);
        // Known not to fit: not tried at all, straight to the cache.
        let (_, outcome) = load(&engine, &cache, plugin, false).expect("cache");
        assert_eq!(outcome, CacheOutcome::Hit);
    }
}
