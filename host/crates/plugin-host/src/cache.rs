//! On-disk cache of compiled components, so the daemon starts in milliseconds instead
//! of JIT-compiling every plugin on every start.
//!
//! An entry is `Component::serialize()` output keyed by (sha256 of the `.wasm`, wasmtime
//! version, `Engine::precompile_compatibility_hash`) in `<dir>/plugins/`, where `<dir>` is
//! `$SIDECAR_CACHE_DIR`, else `$XDG_CACHE_HOME/sidecar`, else `~/.cache/sidecar` (without
//! `HOME`: `/var/cache/sidecar` for root, the password database's home otherwise).
//!
//! Loading compiled code is `unsafe` in wasmtime (it is machine code), so an entry is
//! trusted only if the directory is the daemon user's and not writable by others, and
//! the entry's checksum (xxh3-128 over the payload, in our own header) matches. Anything
//! else, including a file wasmtime refuses, is recompiled and rewritten atomically
//! (temp file + rename). Without a usable directory plugins are compiled in memory.

use sha2::{Digest, Sha256};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The pinned wasmtime (host/Cargo.toml); part of the key so an upgrade never even tries
/// an old entry. A test checks it against Cargo.lock.
pub const WASMTIME_VERSION: &str = "48.0.8";

const MAGIC: &[u8; 8] = b"SCCWASM1";
const HEADER_LEN: usize = MAGIC.len() + 16;

/// Where compiled plugins are kept. The daemon's configuration module picks the
/// directory (`SIDECAR_CACHE_DIR`, `XDG_CACHE_HOME`, `HOME`, or a system default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheSetting {
    Dir(PathBuf),
    /// Compile at every start, write nothing (the default for library callers).
    #[default]
    Disabled,
}

impl CacheSetting {
    /// The cache root this setting resolves to, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        match self {
            CacheSetting::Dir(d) => Some(d.clone()),
            CacheSetting::Disabled => None,
        }
    }
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A default plugin, loaded from the machine code precompiled at build time and
    /// embedded in the binary (no compilation, no cache entry).
    Precompiled,
    /// Loaded from a cache entry.
    Hit,
    /// Compiled, and the entry written.
    Compiled,
    /// Compiled in memory (no usable cache directory, or writing failed).
    CompiledUncached,
}

/// The compiled-code cache of one engine.
pub struct CompileCache {
    dir: Option<PathBuf>,
    compat: String,
}

impl CompileCache {
    /// Opens (creating, mode 0700) `<root>/plugins`. An unusable directory disables the
    /// cache with a warning; plugins still load, only slower.
    pub fn open(engine: &Engine, root: Option<PathBuf>) -> CompileCache {
        let compat = compat_hash(engine);
        let dir = match root {
            None => {
                tracing::warn!(
                    "plugins: no cache directory (set SIDECAR_CACHE_DIR); compiling plugins in memory at every start"
                );
                None
            }
            Some(root) => match prepare_dir(&root.join("plugins")) {
                Ok(dir) => Some(dir),
                Err(why) => {
                    tracing::warn!(dir = %root.display(), %why, "plugins: cache directory unusable; compiling plugins in memory");
                    None
                }
            },
        };
        CompileCache { dir, compat }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache file for a component with this sha256.
    pub fn entry_path(&self, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{WASMTIME_VERSION}-{}.cwasm", self.compat)))
    }

    /// The compiled component for `wasm` (whose sha256 is `sha256`), from the cache when
    /// a valid entry exists. CPU-bound: call from a blocking thread.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(sha256) else {
            return Ok((
                Component::new(engine, wasm)?,
                CacheOutcome::CompiledUncached,
            ));
        };
        match read_entry(engine, &path) {
            Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(plugin = name, entry = %path.display(), %why, "plugins: ignoring bad cache entry, recompiling")
            }
        }
        let component = Component::new(engine, wasm)?;
        let outcome = match component
            .serialize()
            .map_err(anyhow::Error::from)
            .and_then(|bytes| write_entry(&path, &bytes))
        {
            Ok(()) => CacheOutcome::Compiled,
            Err(why) => {
                tracing::warn!(plugin = name, entry = %path.display(), why = %format!("{why:#}"), "plugins: could not write cache entry");
                CacheOutcome::CompiledUncached
            }
        };
        Ok((component, outcome))
    }
}

/// sha256 of a `.wasm`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The engine's compatibility hash as 16 hex digits (stable: sha256-based hasher).
fn compat_hash(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            let digest = self.0.clone().finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(first)
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Creates the directory if needed and checks it is ours and not writable by others.
fn prepare_dir(dir: &Path) -> Result<PathBuf, String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("create {}: {e}", dir.display()))?;
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let meta = fs::metadata(d).map_err(|e| format!("stat {}: {e}", d.display()))?;
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(format!("{} belongs to another user", d.display()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("{} is writable by group or others", d.display()));
        }
    }
    Ok(dir.to_path_buf())
}

/// `Ok(None)` when there is no entry; `Err` when there is one we must not use.
fn read_entry(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("read: {e}")),
    };
    let meta = fs::metadata(path).map_err(|e| format!("stat: {e}"))?;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err("entry is not ours or is writable by others".into());
    }
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a cache entry (bad header)".into());
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    if header[MAGIC.len()..] != xxhash_rust::xxh3::xxh3_128(payload).to_le_bytes() {
        return Err("checksum mismatch (truncated or corrupt)".into());
    }
    // SAFETY: the payload was written by `write_entry` (this daemon) into a directory
    // that only the daemon's user can write, and its checksum matches, so these are
    // exactly the bytes `Component::serialize` produced. wasmtime additionally checks
    // the version and engine configuration recorded in them.
    let component = unsafe { Component::deserialize(engine, payload) };
    component
        .map(Some)
        .map_err(|e| format!("wasmtime refused it: {e}"))
}

fn write_entry(path: &Path, payload: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("cache entry without a directory"))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&xxhash_rust::xxh3::xxh3_128(payload).to_le_bytes())?;
        file.write_all(payload)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock = include_str!("../../../../Cargo.lock");
        let found = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmtime\"\n"));
        let block = found.expect("wasmtime in Cargo.lock");
        assert!(
            block.contains(&format!("version = \"{WASMTIME_VERSION}\"")),
            "update WASMTIME_VERSION"
        );
    }

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    }

    /// A minimal valid component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn hit_after_miss_and_corrupt_entries_are_recompiled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let cache = CompileCache::open(&engine, Some(dir.path().to_path_buf()));
        let sha = sha256_hex(EMPTY_COMPONENT);
        let (_, first) = cache
            .load(&engine, "t", EMPTY_COMPONENT, &sha)
            .expect("compile");
        assert_eq!(first, CacheOutcome::Compiled);
        let (_, second) = cache
            .load(&engine, "t", EMPTY_COMPONENT, &sha)
            .expect("load");
        assert_eq!(second, CacheOutcome::Hit);

        let path = cache.entry_path(&sha).expect("entry");
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).expect("corrupt it");
        let (_, third) = cache
            .load(&engine, "t", EMPTY_COMPONENT, &sha)
            .expect("recompile");
        assert_eq!(third, CacheOutcome::Compiled, "bit flip detected");
        fs::write(&path, &bytes[..HEADER_LEN + 3]).expect("truncate it");
        let (_, fourth) = cache
            .load(&engine, "t", EMPTY_COMPONENT, &sha)
            .expect("recompile");
        assert_eq!(fourth, CacheOutcome::Compiled, "truncation detected");
        assert_eq!(
            cache
                .load(&engine, "t", EMPTY_COMPONENT, &sha)
                .expect("load")
                .1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn world_writable_directory_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        let engine = engine();
        let cache = CompileCache::open(&engine, Some(dir.path().to_path_buf()));
        assert!(cache.dir().is_none());
        let (_, outcome) = cache
            .load(&engine, "t", EMPTY_COMPONENT, "x")
            .expect("compile");
        assert_eq!(outcome, CacheOutcome::CompiledUncached);
    }
}
