//! Loading: from a [`PluginsConfig`] to ready-to-call plugins behind the traits in
//! [`super::api`].
//!
//! For every plugin in use: bytes (embedded or file) -> compiled component (from the
//! cache when possible, on blocking threads in parallel) -> kind and WIT version checked
//! against its uses -> `InstancePre` (imports resolved once; a plugin needing an import
//! this host lacks fails here, at start) -> a pool with one warm, configured instance.
//!
//! Structural problems (unreadable file, not a component, wrong kind, incompatible
//! version, missing imports) fail the load with the plugins.toml line. A plugin that
//! rejects its settings is *disabled*: it loads, calls return
//! [`PluginError::Unavailable`], and [`LoadedPlugins::problems`] reports it.

use super::api::{DiscoverySource, HealthChecker, LocalServices, Namer, PluginError, ProxyEmitter};
use super::breaker::BreakerPolicy;
use super::cache::{CacheOutcome, CacheSetting, CompileCache, sha256_hex};
use super::check::WasmChecker;
use super::discovery::WasmDiscovery;
use super::embedded;
use super::emitter::WasmEmitter;
use super::engine::{self, Allocator, AllocatorChoice, EngineSizing};
use super::engine_config;
use super::grants::{Grants, HostPattern, Placeholders};
use super::inspect::{self, Inspection};
use super::limits::{DEFAULT_CHECK_INSTANCES, DEFAULT_MEMORY_MB, Limits};
use super::namer::WasmNamer;
use super::pool::{Pool, PoolControl, PoolStats};
use super::state::{HostState, PluginContext};
use super::world::World;
use super::{Kind, host_imports};
use crate::plugins_toml::{Location, PluginSettings, PluginSource, PluginsConfig};
use anyhow::{Context as _, anyhow};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// How to load (everything that is not in plugins.toml).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Fills `{advertise_ip}` in `http` grants.
    pub advertise_ip: Option<String>,
    /// Fills `{hostname}` in `http` grants.
    pub hostname: Option<String>,
    pub cache: CacheSetting,
    pub allocator: AllocatorChoice,
    /// Also load the built-in plugins nothing uses (`sidecar plugins list` does).
    pub load_unused: bool,
    /// Circuit breaker for crashing plugins; the default trips after 5 crashes in a row.
    pub breaker: BreakerPolicy,
    /// The daemon's local services, for the `local-services` import (`Ttl`, `Alias`);
    /// None (the CLI tools): no reports, no local services.
    pub local: Option<Arc<dyn LocalServices>>,
}

/// Entry point: `Runtime::load(&config, &options).await`.
pub struct Runtime;

/// A discovery-source plugin and how often to call it.
#[derive(Clone)]
pub struct LoadedDiscovery {
    pub name: String,
    pub interval: Duration,
    pub source: Arc<dyn DiscoverySource>,
}

/// Whether a plugin can be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginStatus {
    /// Loaded, configured, in use.
    Ready,
    /// Loaded (compiled and linked) but nothing uses it; never instantiated.
    Unused,
    /// Calls fail with `Unavailable` (rejected its settings).
    Disabled(String),
}

/// One plugin, for `sidecar plugins list` and status output.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub kind: Kind,
    /// `sidecar:plugin` version the component was built against.
    pub wit_version: String,
    pub source: PluginSource,
    pub description: String,
    /// The grants in force (placeholders filled in).
    pub http: Vec<String>,
    pub exec: bool,
    pub net: Vec<String>,
    /// Extra HTTPS roots and the bearer token file (paths only; never the content).
    pub ca_file: Option<std::path::PathBuf>,
    pub bearer_token_file: Option<std::path::PathBuf>,
    pub limits: Limits,
    /// What uses it: `namer`, `check HttpGet`, `discovery every 5s`, `emitter`.
    pub uses: Vec<String>,
    pub status: PluginStatus,
    pub compiled: CacheOutcome,
    pub stats: PoolStats,
}

/// The loaded plugins, ready to call.
pub struct LoadedPlugins {
    pub namer: Arc<dyn Namer>,
    /// Check type -> checker (`HttpGet`, `External`, `AlwaysSuccessful`, custom names).
    pub checks: BTreeMap<String, Arc<dyn HealthChecker>>,
    pub discovery: Vec<LoadedDiscovery>,
    /// Proxy config emitters listed in plugins.toml `emitters`, by plugin name.
    pub emitters: BTreeMap<String, Arc<dyn ProxyEmitter>>,
    entries: Vec<Entry>,
    allocator: Allocator,
    cache_dir: Option<std::path::PathBuf>,
}

struct Entry {
    info: PluginInfo,
    pool: Option<Arc<dyn PoolControl>>,
}

impl LoadedPlugins {
    /// The checker for a check type and its registered name: exact, else ignoring case
    /// (Sidecar's labels write `httpget` too). None for a type nobody registered: unlike
    /// Sidecar, which ran it as `HttpGet` and failed on the arguments, the caller reports
    /// it as an error.
    pub fn checker(&self, check_type: &str) -> Option<(String, Arc<dyn HealthChecker>)> {
        if let Some(c) = self.checks.get(check_type) {
            return Some((check_type.to_string(), c.clone()));
        }
        self.checks
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(check_type))
            .map(|(k, c)| (k.clone(), c.clone()))
    }

    /// Check types whose plugin may run programs (`grants.exec`). The daemon keeps them
    /// from checks that a container's labels ask for unless the operator allows it.
    pub fn exec_check_types(&self) -> std::collections::BTreeSet<String> {
        self.entries
            .iter()
            .filter(|e| e.info.exec)
            .flat_map(|e| e.info.uses.iter())
            .filter_map(|u| u.strip_prefix("check "))
            .map(String::from)
            .collect()
    }

    /// Every loaded plugin, sorted by name.
    pub fn describe(&self) -> Vec<PluginInfo> {
        self.entries
            .iter()
            .map(|e| {
                let mut info = e.info.clone();
                if let Some(pool) = &e.pool {
                    info.stats = pool.stats();
                    if let Some(reason) = pool.disabled() {
                        info.status = PluginStatus::Disabled(reason);
                    }
                }
                info
            })
            .collect()
    }

    /// Disabled plugins in use, with the reason. The daemon should refuse to start with
    /// a disabled namer (Sidecar exited on a bad `SERVICES_NAME_MATCH`).
    pub fn problems(&self) -> Vec<(String, String)> {
        self.describe()
            .into_iter()
            .filter_map(|i| match i.status {
                PluginStatus::Disabled(reason) if !i.uses.is_empty() => Some((i.name, reason)),
                _ => None,
            })
            .collect()
    }

    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// How the plugins' code was obtained: (precompiled into the binary, from the compile
    /// cache, compiled at this load).
    pub fn code_sources(&self) -> (usize, usize, usize) {
        let count = |f: fn(CacheOutcome) -> bool| {
            self.entries.iter().filter(|e| f(e.info.compiled)).count()
        };
        (
            count(|o| o == CacheOutcome::Precompiled),
            count(|o| o == CacheOutcome::Hit),
            count(|o| matches!(o, CacheOutcome::Compiled | CacheOutcome::CompiledUncached)),
        )
    }

    /// The compile-cache directory in use, if any.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    /// Drops every warm instance; the next calls instantiate afresh (benchmarks).
    pub fn drop_warm_instances(&self) {
        for e in &self.entries {
            if let Some(pool) = &e.pool {
                pool.drop_idle();
            }
        }
    }
}

/// A plugin selected for loading, before compilation.
struct Wanted {
    name: String,
    settings: PluginSettings,
    uses: Vec<Use>,
}

#[derive(Clone)]
struct Use {
    kind: Kind,
    what: String,
    at: Option<Location>,
}

impl Runtime {
    /// Loads every plugin the configuration uses (all built-ins too with
    /// `options.load_unused`).
    pub async fn load(
        config: &PluginsConfig,
        options: &LoadOptions,
    ) -> anyhow::Result<LoadedPlugins> {
        let wanted = wanted(config, options);
        let sizing = EngineSizing {
            max_memory_bytes: wanted
                .iter()
                .map(|w| w.settings.memory_mb.unwrap_or(DEFAULT_MEMORY_MB))
                .max()
                .unwrap_or(DEFAULT_MEMORY_MB) as usize
                * (1 << 20),
            total_instances: wanted
                .iter()
                .map(|w| w.settings.instances.unwrap_or_else(|| default_instances(w)))
                .sum(),
        };
        let (engine, allocator) = engine::build(options.allocator, sizing)?;
        // The embedded plugins' machine code was compiled for the default memory limit.
        let fits = engine_config::memory_reservation(sizing.max_memory_bytes)
            == engine_config::default_memory_reservation();
        if !fits
            && wanted
                .iter()
                .any(|w| w.settings.source() == PluginSource::Embedded)
        {
            tracing::info!(
                largest_memory_mb = sizing.max_memory_bytes >> 20,
                default_memory_mb = DEFAULT_MEMORY_MB,
                "plugins: the largest memory_mb in use is not the default, which changes the compiled code; the built-in plugins are compiled (and cached) instead of using their precompiled copies"
            );
        }
        let linker = Arc::new(host_imports::linker(&engine)?);
        let cache_root = options.cache.dir();
        let cache = Arc::new(CompileCache::open(&engine, cache_root));
        let http = host_imports::http_client()?;
        let placeholders = Placeholders {
            advertise_ip: options.advertise_ip.clone(),
            hostname: options.hostname.clone(),
        };

        // Compile (or load from the cache) in parallel, off the async threads.
        let mut compiling = Vec::new();
        for w in &wanted {
            let (engine, cache, name, source) = (
                engine.clone(),
                cache.clone(),
                w.name.clone(),
                w.settings.source(),
            );
            let at = w.settings.at.clone();
            compiling.push(tokio::task::spawn_blocking(move || {
                compile(&engine, &cache, fits, &name, &source, at.as_ref())
            }));
        }
        let mut compiled = Vec::new();
        for handle in compiling {
            compiled.push(
                handle
                    .await
                    .map_err(|e| anyhow!("plugin compilation task failed: {e}"))??,
            );
        }

        let mut entries = Vec::new();
        let mut namers = BTreeMap::new();
        let mut checkers = BTreeMap::new();
        let mut sources = BTreeMap::new();
        let mut emitters = BTreeMap::new();
        let mut warmups = Vec::new();
        for (w, (component, outcome, description)) in wanted.into_iter().zip(compiled) {
            let inspection = inspect::inspect(&engine, &component);
            let kind = check_kind(&w, &inspection)?;
            let wit_version = inspection
                .wit_version
                .clone()
                .unwrap_or_else(|| "?".to_string());
            let limits = limits(kind, &w.settings);
            let grants = grants(&w.name, &w.settings, &placeholders);
            let ctx = Arc::new(PluginContext {
                name: Arc::from(w.name.as_str()),
                grants: grants.clone(),
                limits: limits.clone(),
                settings: w.settings.settings.clone(),
                http: host_imports::PluginHttp::new(http.clone(), grants.ca_file.clone()),
                local: options.local.clone(),
            });
            let info = PluginInfo {
                name: w.name.clone(),
                kind,
                wit_version,
                source: w.settings.source(),
                description,
                http: grants.http.iter().map(ToString::to_string).collect(),
                exec: grants.exec,
                net: grants.net.iter().map(ToString::to_string).collect(),
                ca_file: grants.ca_file.clone(),
                bearer_token_file: grants.bearer_token_file.clone(),
                limits,
                uses: w.uses.iter().map(|u| u.what.clone()).collect(),
                status: if w.uses.is_empty() {
                    PluginStatus::Unused
                } else {
                    PluginStatus::Ready
                },
                compiled: outcome,
                stats: PoolStats::default(),
            };
            let used = !w.uses.is_empty();
            let policy = options.breaker;
            // One pool per plugin, filed under its kind and warmed up below if used.
            let build = Builder {
                engine: &engine,
                linker: &linker,
                component: &component,
                ctx,
                policy,
                wanted: &w,
                used,
            };
            let pool: Arc<dyn PoolControl> = match kind {
                Kind::Namer => build.file(&mut namers, &mut warmups)?,
                Kind::HealthCheck => build.file(&mut checkers, &mut warmups)?,
                Kind::DiscoverySource => build.file(&mut sources, &mut warmups)?,
                Kind::ProxyEmitter => build.file(&mut emitters, &mut warmups)?,
            };
            entries.push(Entry {
                info,
                pool: Some(pool),
            });
        }
        // One warm, configured instance per plugin in use; a rejection disables it.
        futures::future::join_all(warmups).await;

        let namer_pool = namers
            .get(&config.namer.plugin)
            .cloned()
            .ok_or_else(|| anyhow!("namer not loaded"))?;
        let checks: BTreeMap<String, Arc<dyn HealthChecker>> = config
            .checks
            .iter()
            .filter_map(|(t, r)| {
                checkers.get(&r.plugin).map(|p| {
                    (
                        t.clone(),
                        Arc::new(WasmChecker(p.clone())) as Arc<dyn HealthChecker>,
                    )
                })
            })
            .collect();
        let discovery = config
            .discovery
            .iter()
            .filter_map(|d| {
                sources.get(&d.plugin.plugin).map(|p| LoadedDiscovery {
                    name: d.plugin.plugin.clone(),
                    interval: d.interval,
                    source: Arc::new(WasmDiscovery(p.clone())),
                })
            })
            .collect();
        let emitters = config
            .emitters
            .iter()
            .filter_map(|e| {
                emitters.get(&e.plugin).map(|p| {
                    (
                        e.plugin.clone(),
                        Arc::new(WasmEmitter(p.clone())) as Arc<dyn ProxyEmitter>,
                    )
                })
            })
            .collect();
        entries.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        Ok(LoadedPlugins {
            namer: Arc::new(WasmNamer(namer_pool)),
            checks,
            discovery,
            emitters,
            entries,
            allocator,
            cache_dir: cache.dir().map(ToOwned::to_owned),
        })
    }
}

async fn warm<W: World>(used: bool, pool: Arc<Pool<W>>) {
    if !used {
        return;
    }
    if let Err(e) = pool.warm_up().await {
        match e {
            PluginError::Unavailable { .. } => {} // logged by the pool; reported by problems()
            other => tracing::warn!(plugin = pool.name(), "first instance failed: {other}"),
        }
    }
}

/// What building one plugin's pool takes.
struct Builder<'a> {
    engine: &'a Engine,
    linker: &'a Linker<HostState>,
    component: &'a Component,
    ctx: Arc<PluginContext>,
    policy: BreakerPolicy,
    wanted: &'a Wanted,
    used: bool,
}

impl Builder<'_> {
    /// Builds the pool, files it in `pools` by plugin name and queues its warm-up.
    fn file<W: World>(
        self,
        pools: &mut BTreeMap<String, Arc<Pool<W>>>,
        warmups: &mut Vec<BoxFuture<'static, ()>>,
    ) -> anyhow::Result<Arc<dyn PoolControl>> {
        let pool = Arc::new(pool::<W>(
            self.engine,
            self.linker,
            self.component,
            self.ctx,
            self.policy,
            self.wanted,
        )?);
        pools.insert(self.wanted.name.clone(), pool.clone());
        warmups.push(Box::pin(warm(self.used, pool.clone())));
        Ok(pool)
    }
}

fn pool<W: World>(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
    ctx: Arc<PluginContext>,
    policy: BreakerPolicy,
    w: &Wanted,
) -> anyhow::Result<Pool<W>> {
    let pre = linker
        .instantiate_pre(component)
        .and_then(W::new_pre)
        .map_err(|e| {
            anyhow!(
                "{}plugin `{}` cannot be linked: {e:#}",
                prefix(w.settings.at.as_ref()),
                w.name
            )
        })?;
    Ok(Pool::new(engine.clone(), ctx, pre, policy))
}

fn prefix(at: Option<&Location>) -> String {
    at.map(|a| format!("{a}: ")).unwrap_or_default()
}

/// Bytes -> component. Returns the component, how it was obtained, and a description.
fn compile(
    engine: &Engine,
    cache: &CompileCache,
    precompiled_fits: bool,
    name: &str,
    source: &PluginSource,
    at: Option<&Location>,
) -> anyhow::Result<(Component, CacheOutcome, String)> {
    let started = std::time::Instant::now();
    let (component, outcome, description) = match source {
        PluginSource::Embedded => {
            let plugin = embedded::find(name).ok_or_else(|| {
                anyhow!(
                    "{}plugin `{name}` is not built in and has no `wasm` path",
                    prefix(at)
                )
            })?;
            let (c, o) = embedded::load(engine, cache, plugin, precompiled_fits)?;
            (c, o, plugin.description.to_string())
        }
        PluginSource::File(path) => {
            let bytes = std::fs::read(path).with_context(|| {
                format!("{}plugin `{name}`: read {}", prefix(at), path.display())
            })?;
            let (c, o) = cache
                .load(engine, name, &bytes, &sha256_hex(&bytes))
                .with_context(|| {
                    format!(
                        "{}plugin `{name}`: {} is not a valid component",
                        prefix(at),
                        path.display()
                    )
                })?;
            (c, o, String::new())
        }
    };
    tracing::debug!(
        plugin = name,
        ?outcome,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "plugin compiled"
    );
    Ok((component, outcome, description))
}

/// The plugins to load and what uses each.
fn wanted(config: &PluginsConfig, options: &LoadOptions) -> Vec<Wanted> {
    let mut uses: BTreeMap<String, Vec<Use>> = BTreeMap::new();
    let mut add = |plugin: &str, kind: Kind, what: String, at: Option<&Location>| {
        uses.entry(plugin.to_string()).or_default().push(Use {
            kind,
            what,
            at: at.cloned(),
        });
    };
    add(
        &config.namer.plugin,
        Kind::Namer,
        "namer".into(),
        config.namer.at.as_ref(),
    );
    for (check_type, r) in &config.checks {
        add(
            &r.plugin,
            Kind::HealthCheck,
            format!("check {check_type}"),
            r.at.as_ref(),
        );
    }
    for d in &config.discovery {
        add(
            &d.plugin.plugin,
            Kind::DiscoverySource,
            format!("discovery every {:?}", d.interval),
            d.plugin.at.as_ref(),
        );
    }
    for e in &config.emitters {
        add(
            &e.plugin,
            Kind::ProxyEmitter,
            "emitter".into(),
            e.at.as_ref(),
        );
    }
    let mut names: BTreeSet<String> = uses.keys().cloned().collect();
    names.extend(config.plugins.keys().cloned());
    if options.load_unused {
        names.extend(embedded::names().map(String::from));
    }
    names
        .into_iter()
        .map(|name| Wanted {
            settings: config.plugin(&name),
            uses: uses.remove(&name).unwrap_or_default(),
            name,
        })
        .collect()
}

fn default_instances(w: &Wanted) -> u32 {
    let check = w.uses.iter().any(|u| u.kind == Kind::HealthCheck)
        || w.settings.kind == Some(Kind::HealthCheck);
    if check { DEFAULT_CHECK_INSTANCES } else { 1 }
}

/// The component's kind, checked against `kind =` and every use.
fn check_kind(w: &Wanted, inspection: &Inspection) -> anyhow::Result<Kind> {
    let at = prefix(w.settings.at.as_ref());
    if let Some(version) = &inspection.wit_version {
        inspect::compatible(version).map_err(|e| anyhow!("{at}plugin `{}`: {e}", w.name))?;
    }
    let kind = match inspection.kinds.as_slice() {
        [kind] => *kind,
        [] => {
            return Err(anyhow!(
                "{at}plugin `{}` exports none of the sidecar:plugin interfaces (naming, health, discovery, emitter); \
                 build it for one of the worlds in wit/worlds.wit",
                w.name
            ));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|k| k.as_str()).collect();
            return Err(anyhow!(
                "{at}plugin `{}` exports several plugin kinds ({})",
                w.name,
                names.join(", ")
            ));
        }
    };
    if let Some(declared) = w.settings.kind
        && declared != kind
    {
        return Err(anyhow!(
            "{at}plugin `{}` is declared `kind = \"{declared}\"` but the component is a {kind}",
            w.name
        ));
    }
    for u in &w.uses {
        if u.kind != kind {
            return Err(anyhow!(
                "{}{} uses plugin `{}`, which is a {kind}, not a {}",
                prefix(u.at.as_ref()),
                u.what,
                w.name,
                u.kind
            ));
        }
    }
    Ok(kind)
}

fn limits(kind: Kind, s: &PluginSettings) -> Limits {
    let d = Limits::defaults(kind);
    Limits {
        memory_bytes: s
            .memory_mb
            .map(|m| (m as usize) << 20)
            .unwrap_or(d.memory_bytes),
        timeout: s.timeout.unwrap_or(d.timeout),
        instances: s.instances.unwrap_or(d.instances),
    }
}

/// plugins.toml grants, else the built-in plugin's defaults; placeholders filled in.
fn grants(name: &str, s: &PluginSettings, placeholders: &Placeholders) -> Grants {
    let builtin = embedded::is_embedded(name) && s.wasm.is_none();
    let (default_http, default_exec) = if builtin {
        embedded::default_grants(name)
    } else {
        (&[][..], false)
    };
    let default_net = if builtin {
        embedded::default_net_grant(name)
    } else {
        &[]
    };
    Grants {
        http: allow_list(name, "http", s.http.as_deref(), default_http, placeholders),
        exec: s.exec.unwrap_or(default_exec),
        net: allow_list(name, "net", s.net.as_deref(), default_net, placeholders),
        ca_file: s.ca_file.clone(),
        bearer_token_file: s.bearer_token_file.clone(),
    }
}

/// One allow-list: the file's patterns, else the defaults; placeholders filled in.
fn allow_list(
    name: &str,
    grant: &str,
    given: Option<&[HostPattern]>,
    defaults: &[&str],
    placeholders: &Placeholders,
) -> Vec<HostPattern> {
    let patterns: Vec<HostPattern> = match given {
        Some(list) => list.to_vec(),
        None => defaults
            .iter()
            .filter_map(|p| HostPattern::parse(p).ok())
            .collect(),
    };
    patterns
        .iter()
        .filter_map(|p| {
            let expanded = p.expand(placeholders);
            if expanded.is_none() {
                tracing::debug!(plugin = name, grant, pattern = %p, "grant pattern dropped: placeholder has no value");
            }
            expanded
        })
        .collect()
}
