//! Instances of one plugin: warm ones kept for reuse, fresh ones made on demand (up to
//! the plugin's instance cap), and crashed ones thrown away.
//!
//! Every call gets a deadline. The epoch callback yields to tokio every tick and
//! interrupts the guest once the deadline has passed; a tokio timeout backs it up for a
//! guest blocked inside a host call. A call that traps, runs out of memory or times out
//! leaves its instance unusable ("cannot enter component instance"), so the instance is
//! dropped, the error names the plugin (and quotes the end of its stderr, where a Rust
//! panic message lands), and the next call instantiates afresh. Repeated crashes trip
//! the circuit breaker.

use super::api::PluginError;
use super::breaker::{Breaker, BreakerPolicy};
use super::engine::{CallActivity, TICK};
use super::state::{Deadlines, HostState, PluginContext};
use super::world::World;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// An instance is replaced after this many calls, bounding slow leaks in a guest.
const MAX_CALLS_PER_INSTANCE: u64 = 10_000;

/// An instance whose linear memory grew by more than this since it was configured is
/// replaced after the call. Wasm memories never shrink, so one large call (an emitter
/// given a 10,000-service catalog) would otherwise pin its peak for the instance's
/// life; dropping the instance returns the pages to the OS.
const RETAINED_GROWTH: usize = 8 << 20;

struct Warm<W> {
    store: Store<HostState>,
    world: W,
    calls: u64,
    /// Linear memory right after `configure`: what the guest needs to exist.
    baseline: usize,
}

impl<W> Warm<W> {
    /// Whether the instance should serve another call.
    fn reusable(&self) -> bool {
        self.calls < MAX_CALLS_PER_INSTANCE
            && self.store.data().memory.grown() <= self.baseline + RETAINED_GROWTH
    }
}

/// Counters for `describe()` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub calls: u64,
    pub crashes: u64,
    pub instantiations: u64,
    pub idle: usize,
}

/// What callers outside the pool may do with it, whatever its world.
pub(crate) trait PoolControl: Send + Sync {
    fn stats(&self) -> PoolStats;
    /// Drops the warm instances (benchmarks; the next call instantiates).
    fn drop_idle(&self);
    /// Why the plugin is disabled, if it is.
    fn disabled(&self) -> Option<String>;
}

pub(crate) struct Pool<W: World> {
    ctx: Arc<PluginContext>,
    engine: Engine,
    pre: W::Pre,
    idle: Mutex<Vec<Warm<W>>>,
    slots: Semaphore,
    breaker: Mutex<Breaker>,
    /// Set when `configure` rejected the settings: permanent until the config changes.
    rejected: Mutex<Option<String>>,
    calls: AtomicU64,
    crashes: AtomicU64,
    instantiations: AtomicU64,
}

impl<W: World> Pool<W> {
    pub fn new(
        engine: Engine,
        ctx: Arc<PluginContext>,
        pre: W::Pre,
        policy: BreakerPolicy,
    ) -> Pool<W> {
        let slots = ctx.limits.instances as usize;
        Pool {
            ctx,
            engine,
            pre,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(slots),
            breaker: Mutex::new(Breaker::new(policy)),
            rejected: Mutex::new(None),
            calls: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            instantiations: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    pub fn limits(&self) -> &super::limits::Limits {
        &self.ctx.limits
    }

    /// Makes one instance and configures it, so bad settings surface at load time and
    /// the first call finds a warm instance.
    pub async fn warm_up(&self) -> Result<(), PluginError> {
        let deadlines = Deadlines::starting_now(self.ctx.limits.timeout);
        let warm = self.fresh(deadlines).await?;
        self.idle.lock().push(warm);
        Ok(())
    }

    /// Runs `f` on an instance within `budget`. `f` gets the instance's bindings and
    /// store and returns the export's `result<T, string>`.
    pub async fn call<R, F>(&self, budget: Duration, f: F) -> Result<R, PluginError>
    where
        R: Send,
        F: for<'a> FnOnce(
                &'a W,
                &'a mut Store<HostState>,
            ) -> BoxFuture<'a, wasmtime::Result<Result<R, String>>>
            + Send,
    {
        if let Some(reason) = self.rejected.lock().clone() {
            return Err(self.unavailable(reason));
        }
        if let Err(refused) = self.breaker.lock().admit(Instant::now()) {
            return Err(self.unavailable(format!(
                "disabled after {} consecutive crashes; next try in {:.1}s",
                refused.crashes,
                refused.retry_in.as_secs_f64()
            )));
        }
        let deadlines = Deadlines::starting_now(budget);
        let permit =
            match tokio::time::timeout_at(deadlines.hard.into(), self.slots.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    self.breaker.lock().abandon();
                    return Err(self.unavailable(format!(
                        "all {} instances stayed busy for {budget:?}",
                        self.ctx.limits.instances
                    )));
                }
            };
        let reused = self.idle.lock().pop();
        let mut warm = match reused {
            Some(w) => w,
            None => match self.fresh(deadlines).await {
                Ok(w) => w,
                Err(e) => {
                    drop(permit);
                    return Err(e);
                }
            },
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        warm.store.data_mut().begin_call(deadlines);
        warm.store.set_epoch_deadline(1);
        let outcome = {
            let _ticking = CallActivity::start();
            let Warm { store, world, .. } = &mut warm;
            tokio::time::timeout_at((deadlines.hard + 2 * TICK).into(), f(world, store)).await
        };
        let stderr_tail = warm.store.data_mut().end_call();
        let result = match outcome {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(message))) => Err(PluginError::Failed {
                plugin: self.name().to_string(),
                message,
            }),
            Ok(Err(err)) => Err(self.crashed(classify(
                &self.ctx,
                &err,
                warm.store.data(),
                &stderr_tail,
                budget,
            ))),
            Err(_elapsed) => Err(self.crashed(PluginError::Timeout {
                plugin: self.name().to_string(),
                after: budget,
            })),
        };
        if !matches!(
            result,
            Err(PluginError::Trap { .. } | PluginError::Timeout { .. })
        ) {
            self.breaker.lock().success();
            warm.calls += 1;
            if warm.reusable() {
                self.idle.lock().push(warm);
            }
        }
        drop(permit);
        result
    }

    /// A new instance, configured with the plugin's settings.
    async fn fresh(&self, deadlines: Deadlines) -> Result<Warm<W>, PluginError> {
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        let mut store = Store::new(&self.engine, HostState::new(self.ctx.clone()));
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadlines.hard {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store.data_mut().begin_call(deadlines);
        let budget = deadlines.io.saturating_duration_since(Instant::now());
        let ticking = CallActivity::start();
        let started = tokio::time::timeout_at((deadlines.hard + 2 * TICK).into(), async {
            let world = W::instantiate(&self.pre, &mut store).await?;
            let configured = world.configure(&mut store, &self.ctx.settings).await?;
            Ok::<_, wasmtime::Error>((world, configured))
        })
        .await;
        drop(ticking);
        let stderr_tail = store.data_mut().end_call();
        match started {
            Ok(Ok((world, Ok(())))) => Ok(Warm {
                baseline: store.data().memory.grown(),
                store,
                world,
                calls: 0,
            }),
            Ok(Ok((_, Err(reason)))) => {
                tracing::error!(
                    plugin = self.name(),
                    "plugin rejected its settings: {reason}"
                );
                let reason = format!("rejected its settings: {reason}");
                *self.rejected.lock() = Some(reason.clone());
                Err(self.unavailable(reason))
            }
            Ok(Err(err)) => Err(self.crashed(classify(
                &self.ctx,
                &err,
                store.data(),
                &stderr_tail,
                budget,
            ))),
            Err(_) => Err(self.crashed(PluginError::Timeout {
                plugin: self.name().to_string(),
                after: budget,
            })),
        }
    }

    fn unavailable(&self, reason: String) -> PluginError {
        PluginError::Unavailable {
            plugin: self.name().to_string(),
            reason,
        }
    }

    /// Counts a crash (the instance is already gone) and logs it.
    fn crashed(&self, error: PluginError) -> PluginError {
        self.crashes.fetch_add(1, Ordering::Relaxed);
        tracing::error!(plugin = self.name(), "{error}; instance discarded");
        if self.breaker.lock().crash(Instant::now()) {
            tracing::warn!(
                plugin = self.name(),
                "plugin keeps crashing: calls refused for a while (circuit breaker)"
            );
        }
        error
    }
}

/// Turns a failed call into an error that says what happened.
fn classify(
    ctx: &PluginContext,
    err: &wasmtime::Error,
    state: &HostState,
    stderr_tail: &str,
    budget: Duration,
) -> PluginError {
    let plugin = ctx.name.to_string();
    if let Some(wanted) = state.memory.refused {
        return PluginError::Trap {
            plugin,
            detail: format!(
                "out of memory: growing to {} MiB exceeds its cap of {} MiB (limits.memory_mb)",
                wanted.div_ceil(1 << 20),
                state.memory.cap() >> 20
            ),
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout {
            plugin,
            after: budget,
        },
        trap => {
            let what = match trap {
                Some(t) => t.to_string(),
                None => format!("{err:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            };
            let detail = match last_lines(stderr_tail, 4) {
                tail if tail.is_empty() => what,
                tail => format!("{what}; stderr: {tail}"),
            };
            PluginError::Trap { plugin, detail }
        }
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

impl<W: World> PoolControl for Pool<W> {
    fn stats(&self) -> PoolStats {
        PoolStats {
            calls: self.calls.load(Ordering::Relaxed),
            crashes: self.crashes.load(Ordering::Relaxed),
            instantiations: self.instantiations.load(Ordering::Relaxed),
            idle: self.idle.lock().len(),
        }
    }

    fn drop_idle(&self) {
        self.idle.lock().clear();
    }

    fn disabled(&self) -> Option<String> {
        self.rejected.lock().clone()
    }
}
