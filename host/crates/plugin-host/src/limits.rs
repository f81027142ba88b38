//! Per-plugin resource limits: memory cap, call deadline, instance cap.

use super::Kind;
use std::time::Duration;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

pub use crate::engine_config::DEFAULT_MEMORY_MB;
/// Upper bound for `memory_mb`.
pub const MAX_MEMORY_MB: u64 = 4096;
/// Deadline of one call unless plugins.toml says otherwise. A health check's own
/// timeout (3 s by default) applies when shorter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent instances of one health-check plugin (one per check in flight).
pub const DEFAULT_CHECK_INSTANCES: u32 = 16;
pub const MAX_INSTANCES: u32 = 256;

/// The limits in force for one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
    /// Maximum live instances. Namers, discovery sources and emitters are called
    /// serially on one instance; health checks run concurrently.
    pub instances: u32,
}

impl Limits {
    pub fn defaults(kind: Kind) -> Limits {
        Limits {
            memory_bytes: (DEFAULT_MEMORY_MB << 20) as usize,
            timeout: DEFAULT_TIMEOUT,
            instances: if kind == Kind::HealthCheck {
                DEFAULT_CHECK_INSTANCES
            } else {
                1
            },
        }
    }

    pub fn memory_mb(&self) -> u64 {
        (self.memory_bytes >> 20) as u64
    }
}

/// `StoreLimits` (memory cap, `trap_on_grow_failure`) that also remembers when the cap
/// was hit, so the error can say "out of memory" instead of a generic trap.
pub(crate) struct MemoryCap {
    inner: StoreLimits,
    cap: usize,
    /// Bytes of linear memory the instance has grown to (all its memories).
    grown: usize,
    /// The size a refused `memory.grow` asked for.
    pub refused: Option<usize>,
}

impl MemoryCap {
    pub fn new(cap: usize) -> MemoryCap {
        MemoryCap {
            inner: StoreLimitsBuilder::new()
                .memory_size(cap)
                .trap_on_grow_failure(true)
                .build(),
            cap,
            grown: 0,
            refused: None,
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Linear memory the instance holds; wasm memories never shrink, so this is its
    /// high-water mark.
    pub fn grown(&self) -> usize {
        self.grown
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let result = self.inner.memory_growing(current, desired, maximum);
        if matches!(result, Ok(true)) {
            self.grown += desired.saturating_sub(current);
        } else {
            self.refused = Some(desired);
        }
        result
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_refuses_and_remembers() {
        let mut cap = MemoryCap::new(1 << 20);
        assert!(matches!(cap.memory_growing(0, 1 << 16, None), Ok(true)));
        assert_eq!(cap.refused, None);
        assert_eq!(cap.grown(), 1 << 16);
        assert!(
            cap.memory_growing(1 << 16, 2 << 20, None).is_err(),
            "trap_on_grow_failure"
        );
        assert_eq!(cap.refused, Some(2 << 20));
    }
}
