//! Keeping the daemon's resident memory at its live data.
//!
//! A service-discovery agent runs on every host for months; what `top` shows for it is
//! part of its cost. Three things inflate RSS beyond live data: glibc keeping freed
//! multi-MB buffers in its heap, Cranelift's transient allocations when a plugin is
//! compiled, and start-up code pages mapped in by page-fault-around.

/// Makes glibc serve every allocation of 256 KiB or more with its own mapping, returned
/// to the OS when freed. By default the threshold grows after the first multi-MB buffer
/// is freed (a rendered document, a parsed static file), after which such buffers come
/// from the heap and leave it fragmented: 10,000 services held 9 MB more RSS that way.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc malloc parameters; any value is accepted or refused.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Returns freed heap pages to the OS after a large transient allocation (parsing a big
/// static file, rendering a multi-MB document), so RSS reflects live data.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmaps the executable's read-only pages after start-up, so steady-state RSS counts
/// only what the daemon keeps using. Start-up touches megabytes of code and read-only
/// data once (configuration, plugin loading, the embedded plugins), and the kernel maps
/// pages around every fault. The pages stay in the page cache and fault back in when
/// used. Only mappings of our own executable that are not writable and hold no private
/// (anonymous) pages are touched: code and constants, never relocated or written data.
pub fn release_startup_pages() {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        for (range, anonymous_kb) in clean_readonly_mappings(&smaps, &exe.to_string_lossy()) {
            if anonymous_kb != 0 {
                continue;
            }
            // SAFETY: the range is a private, read-only mapping of our executable with no
            // private copies (Anonymous: 0 kB); MADV_DONTNEED drops its page-table entries
            // and later accesses fault the same file pages back in.
            let rc = unsafe {
                libc::madvise(
                    range.0 as *mut libc::c_void,
                    range.1 - range.0,
                    libc::MADV_DONTNEED,
                )
            };
            if rc != 0 {
                tracing::debug!("madvise: {}", std::io::Error::last_os_error());
            }
        }
    }
}

/// `((start, end), Anonymous kB)` of every non-writable private mapping of `exe` listed in
/// a `/proc/<pid>/smaps` text.
fn clean_readonly_mappings(smaps: &str, exe: &str) -> Vec<((usize, usize), u64)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            let readonly = perms.len() == 4 && !perms.contains('w') && perms.ends_with('p');
            current = (readonly && path == exe).then_some((start, end));
        } else if first == "Anonymous:"
            && let Some(range) = current.take()
        {
            let kb = fields
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            out.push((range, kb));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_readonly_mappings_of_the_executable_are_chosen() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fe:01 42 /usr/bin/sidecar
Rss:                 800 kB
Anonymous:             0 kB
55d0a0100000-55d0a0900000 r-xp 00100000 fe:01 42 /usr/bin/sidecar
Anonymous:             0 kB
55d0a0900000-55d0a0980000 r--p 00900000 fe:01 42 /usr/bin/sidecar
Anonymous:           512 kB
55d0a0980000-55d0a0990000 rw-p 00980000 fe:01 42 /usr/bin/sidecar
Anonymous:            64 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 7 /usr/lib/libc.so.6
Anonymous:             0 kB
";
        let got = clean_readonly_mappings(smaps, "/usr/bin/sidecar");
        assert_eq!(
            got,
            vec![
                ((0x55d0a0000000, 0x55d0a0100000), 0),
                ((0x55d0a0100000, 0x55d0a0900000), 0),
                ((0x55d0a0900000, 0x55d0a0980000), 512),
            ]
        );
    }

    #[test]
    fn releasing_our_own_pages_keeps_the_process_working() {
        release_startup_pages();
        // Code and constants fault back in: formatting, allocation and this very test.
        assert_eq!(format!("{}", 40 + 2), "42");
    }
}
