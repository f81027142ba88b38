//! The wasmtime `Engine`: one per daemon, shared by every plugin.
//!
//! * Epoch interruption, driven by a ticker thread (every [`TICK`] while a plugin call
//!   runs; asleep otherwise), so a call can be cut off at its deadline and a busy guest
//!   yields to tokio every tick.
//! * Pooling allocator when it can be set up (halves instantiation cost), else the
//!   on-demand allocator: pooling reserves address space up front, which fails on
//!   hosts with strict overcommit or small address-space limits.
//! * Linear memories reserve only as much address space as the largest plugin may
//!   use (not wasmtime's default 4 GiB + guard per memory). The reservation is part of
//!   the compiled code, so it is rounded to a power of two to keep the compile cache
//!   stable across small config changes; with every plugin at the default memory limit
//!   it is the one the embedded default plugins were precompiled for.
//! * Everything that shapes compiled code is in `engine_config`, which build.rs shares.

use crate::engine_config;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Epoch tick. Deadlines are checked (and busy guests yield) at this granularity.
pub const TICK: Duration = Duration::from_millis(10);

/// Which instance allocator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocatorChoice {
    /// Pooling, falling back to on-demand if the pool cannot be created.
    #[default]
    Auto,
    Pooling,
    OnDemand,
}

/// The allocator actually in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    Pooling,
    OnDemand,
}

/// What the engine must accommodate.
#[derive(Debug, Clone, Copy)]
pub struct EngineSizing {
    /// The largest `memory_mb` of any plugin, in bytes.
    pub max_memory_bytes: usize,
    /// Sum of the instance caps of every plugin.
    pub total_instances: u32,
}

/// Builds the engine and starts its epoch ticker.
pub fn build(choice: AllocatorChoice, sizing: EngineSizing) -> anyhow::Result<(Engine, Allocator)> {
    let reservation = engine_config::memory_reservation(sizing.max_memory_bytes);
    let (engine, allocator) = match choice {
        AllocatorChoice::OnDemand => (
            Engine::new(&runtime_config(reservation))?,
            Allocator::OnDemand,
        ),
        AllocatorChoice::Pooling => (pooling_engine(reservation, sizing)?, Allocator::Pooling),
        AllocatorChoice::Auto => match pooling_engine(reservation, sizing) {
            Ok(engine) => (engine, Allocator::Pooling),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "plugins: pooling allocator unavailable, using on-demand allocation");
                (
                    Engine::new(&runtime_config(reservation))?,
                    Allocator::OnDemand,
                )
            }
        },
    };
    start_ticker(&engine)?;
    Ok((engine, allocator))
}

fn pooling_engine(reservation: u64, sizing: EngineSizing) -> anyhow::Result<Engine> {
    let instances = sizing.total_instances.clamp(16, 1024) + 8;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        // Interpreted-language components (componentize-py) link tens of core modules.
        .total_core_instances(instances * 16)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(reservation as usize)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        // Keep what instances freed for the next one, but not forever.
        .max_unused_warm_slots(64);
    let mut config = runtime_config(reservation);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// The code-shaping settings plus how the runtime publishes code (which does not
/// shape it, so artifacts precompiled without it still load).
fn runtime_config(reservation: u64) -> wasmtime::Config {
    let mut config = engine_config::code_config(reservation);
    if runs_code_in_place() {
        config.with_custom_code_memory(Some(Arc::new(InPlaceCode)));
    }
    config
}

/// Whether the daemon's engines can run precompiled code where it lies in memory (the
/// embedded plugins, from the binary's pages): on x86-64 Linux, whose instruction cache
/// needs no maintenance after code is written.
pub(crate) fn runs_code_in_place() -> bool {
    cfg!(all(target_arch = "x86_64", target_os = "linux"))
}

const PAGE: usize = 4096;

/// Publishes code as wasmtime does for memory it mapped itself (`mprotect` to read +
/// execute, never writable and executable at once), and also for memory it did not map:
/// the embedded plugins' machine code in the binary's read-only data.
struct InPlaceCode;

impl InPlaceCode {
    fn protect(
        ptr: *const u8,
        len: usize,
        flags: nix::sys::mman::ProtFlags,
    ) -> wasmtime::Result<()> {
        let Some(start) = std::ptr::NonNull::new(ptr.cast_mut().cast::<std::ffi::c_void>()) else {
            return Ok(());
        };
        if len == 0 {
            return Ok(());
        }
        let len = len.div_ceil(PAGE) * PAGE;
        // SAFETY: wasmtime hands us a page-aligned range of one code image it owns or
        // that we gave it (`deserialize_raw` of a `'static`, page-aligned artifact);
        // nothing else uses those pages, so changing their protection breaks no reader.
        unsafe { nix::sys::mman::mprotect(start, len, flags) }
            .map_err(|e| wasmtime::Error::msg(format!("mprotect of code memory: {e}")))
    }
}

impl wasmtime::CustomCodeMemory for InPlaceCode {
    fn required_alignment(&self) -> usize {
        PAGE
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        use nix::sys::mman::ProtFlags;
        Self::protect(ptr, len, ProtFlags::PROT_READ | ProtFlags::PROT_EXEC)
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        use nix::sys::mman::ProtFlags;
        Self::protect(ptr, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)
    }
}

/// Ticks the engine's epoch until the engine is dropped.
///
/// The epoch only matters while a plugin call runs (it bounds the call), so between
/// calls the ticker sleeps until one starts: an idle daemon does not wake 100 times a
/// second for nothing (on a host with 50 agents, 5,000 wake-ups a second).
fn start_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(TICK);
                let mut active = ACTIVE_CALLS.lock();
                if *active == 0 {
                    // Woken by the next call; the timeout notices a dropped engine.
                    CALL_STARTED.wait_for(&mut active, Duration::from_secs(1));
                }
            }
        })?;
    Ok(())
}

/// Plugin calls in progress in this process; the tickers run while there is one.
static ACTIVE_CALLS: parking_lot::Mutex<usize> = parking_lot::Mutex::new(0);
static CALL_STARTED: parking_lot::Condvar = parking_lot::Condvar::new();

/// Held for the length of a plugin call (or instantiation), so the epoch ticks.
pub(crate) struct CallActivity(());

impl CallActivity {
    pub(crate) fn start() -> CallActivity {
        *ACTIVE_CALLS.lock() += 1;
        CALL_STARTED.notify_all();
        CallActivity(())
    }
}

impl Drop for CallActivity {
    fn drop(&mut self) {
        let mut active = ACTIVE_CALLS.lock();
        *active = active.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_by_default_and_on_demand_when_the_pool_cannot_be_reserved() {
        let small = EngineSizing {
            max_memory_bytes: 64 << 20,
            total_instances: 32,
        };
        assert_eq!(
            build(AllocatorChoice::Auto, small).map(|(_, a)| a).ok(),
            Some(Allocator::Pooling)
        );
        // 2 × 1032 memory slots of 64 GiB each exceed the 128 TiB user address space.
        let huge = EngineSizing {
            max_memory_bytes: 64 << 30,
            total_instances: 1024,
        };
        assert!(
            build(AllocatorChoice::Pooling, huge).is_err(),
            "pooling alone fails"
        );
        assert_eq!(
            build(AllocatorChoice::Auto, huge).map(|(_, a)| a).ok(),
            Some(Allocator::OnDemand)
        );
    }
}
