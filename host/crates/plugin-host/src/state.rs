//! Per-store host state: the WASI context (nothing inherited), the memory cap, the
//! plugin's identity and grants, and the deadlines of the call in progress.

use super::grants::Grants;
use super::limits::{Limits, MemoryCap};
use super::output::{LogPipe, Stream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What every instance of one plugin shares.
pub(crate) struct PluginContext {
    pub name: Arc<str>,
    pub grants: Grants,
    pub limits: Limits,
    pub settings: Vec<(String, String)>,
    /// HTTP clients for the `http` import (the shared pool, or one trusting the
    /// plugin's `ca_file` too).
    pub http: super::host_imports::PluginHttp,
    /// The daemon's local services (`local-services` import); None outside the agent.
    pub local: Option<Arc<dyn crate::api::LocalServices>>,
}

/// Deadlines of the call in progress.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// Host I/O (`http.get`, `process.run`) must finish by then, so the plugin still
    /// has time to report the failure before it is killed.
    pub io: Instant,
    /// The call is interrupted at this instant.
    pub hard: Instant,
}

impl Deadlines {
    /// Extra time between the I/O deadline and the kill, for the plugin to report.
    pub const GRACE: Duration = Duration::from_millis(250);

    pub fn starting_now(budget: Duration) -> Deadlines {
        let now = Instant::now();
        Deadlines {
            io: now + budget,
            hard: now + budget + Self::GRACE,
        }
    }
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryCap,
    pub plugin: Arc<PluginContext>,
    pub deadlines: Deadlines,
    stdout: LogPipe,
    stderr: LogPipe,
    /// `log` import lines in the call in progress (see `host_imports::log`).
    pub log_lines: u32,
    /// What `local-services.sidecar-proxies` answers: set for an `emit` call only.
    pub sidecar_proxies: Arc<[crate::api::SidecarProxy]>,
}

impl HostState {
    pub fn new(plugin: Arc<PluginContext>) -> HostState {
        let stdout = LogPipe::new(plugin.name.clone(), Stream::Stdout);
        let stderr = LogPipe::new(plugin.name.clone(), Stream::Stderr);
        // No env, args, preopened directories or network: the builder's defaults deny
        // sockets and name lookups; the plugin reaches out only through our imports.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(plugin.limits.memory_bytes),
            deadlines: Deadlines::starting_now(plugin.limits.timeout),
            plugin,
            stdout,
            stderr,
            log_lines: 0,
            sidecar_proxies: Arc::new([]),
        }
    }

    pub fn begin_call(&mut self, deadlines: Deadlines) {
        self.deadlines = deadlines;
        self.memory.refused = None;
        self.stdout.reset();
        self.stderr.reset();
        self.log_lines = 0;
    }

    /// Flushes partial output lines; returns the tail of stderr.
    pub fn end_call(&mut self) -> String {
        super::host_imports::log::report_dropped(&self.plugin.name, self.log_lines);
        self.stdout.finish();
        self.stderr.finish()
    }

    /// Time left for host I/O in this call, capped by what the plugin asked for
    /// (`0` = no own limit).
    pub fn io_budget(&self, requested_ms: u32) -> Duration {
        let left = self.deadlines.io.saturating_duration_since(Instant::now());
        match requested_ms {
            0 => left,
            ms => left.min(Duration::from_millis(ms.into())),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
