// The part of the wasmtime `Config` that decides what compiled code looks like.
//
// One definition for two users: the daemon's engine (`engine.rs`) and build.rs, which
// `include!`s this file and precompiles the embedded default plugins with it. Any
// difference between the two (a tunable, a wasm feature) would make every precompiled
// artifact unusable, so nothing that shapes compiled code may be set anywhere else.
// (Plain comments, no `//!`: an `include!`d file cannot carry inner attributes.)
//
// What this file does not decide: the allocator (wasmtime: "usage of the pooling
// allocator does not affect compiled code") and the CPU features, which build.rs pins
// to a portable baseline while the daemon's engine uses the host's (an artifact that
// needs fewer features than the host has loads fine; see `embedded.rs`).

/// Memory a plugin instance may use unless plugins.toml says otherwise. The engine's
/// memory reservation derives from it, and the embedded artifacts are compiled for it.
pub const DEFAULT_MEMORY_MB: u64 = 64;

/// Linear-memory reservation for the largest `memory_mb` in use: a power of two, so
/// small changes to limits do not change compiled code (the reservation is part of it).
pub fn memory_reservation(max_memory_bytes: usize) -> u64 {
    (max_memory_bytes.max(1 << 20) as u64).next_power_of_two()
}

/// The reservation when every plugin keeps the default memory limit: what the embedded
/// artifacts are compiled for.
pub fn default_memory_reservation() -> u64 {
    memory_reservation((DEFAULT_MEMORY_MB << 20) as usize)
}

/// Every code-shaping setting of the daemon's engine.
pub fn code_config(reservation: u64) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.memory_reservation(reservation);
    config.memory_guard_size(2 << 20);
    config.memory_reservation_for_growth(16 << 20);
    config.parallel_compilation(true);
    config
}
