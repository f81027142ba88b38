//! Atomic installation of the config file: the candidate is written next to the live
//! file (same filesystem), flushed, verified by the caller, then renamed over it. A
//! reader (HAProxy on reload) sees the old file or the new one, never a mix.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the candidate for `live` is written: the same directory, a dot-name.
pub fn candidate_path(live: &Path) -> PathBuf {
    let name = live
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haproxy.cfg".into());
    live.with_file_name(format!(".{name}.sidecar-candidate"))
}

/// Writes `contents` to `path` and flushes it to disk.
pub fn write_synced(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Renames `candidate` over `live` and flushes the directory entry.
pub fn install(candidate: &Path, live: &Path) -> std::io::Result<()> {
    std::fs::rename(candidate, live)?;
    if let Some(dir) = live.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort: some filesystems refuse fsync on directories.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Writes `contents` to `live` atomically (candidate + rename), without verification:
/// for restoring a file that was verified before.
pub fn replace(live: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = candidate_path(live);
    write_synced(&tmp, contents)?;
    install(&tmp, live)
}

/// The live file's contents, if it exists and is readable.
pub fn read_live(live: &Path) -> Option<String> {
    std::fs::read_to_string(live).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_then_install() {
        let dir = tempfile::tempdir().expect("tmp");
        let live = dir.path().join("haproxy.cfg");
        std::fs::write(&live, "old").expect("write");
        let cand = candidate_path(&live);
        assert_eq!(cand.parent(), live.parent());
        write_synced(&cand, "new").expect("candidate");
        assert_eq!(read_live(&live).as_deref(), Some("old"));
        install(&cand, &live).expect("install");
        assert_eq!(read_live(&live).as_deref(), Some("new"));
        assert!(!cand.exists());
        replace(&live, "again").expect("replace");
        assert_eq!(read_live(&live).as_deref(), Some("again"));
    }
}
