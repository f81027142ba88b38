//! Process resource limits the daemon adjusts at start.
//!
//! The soft open-files limit is often 1,024 while the hard limit is far higher; every
//! API connection, watcher, gossip stream, check and plugin socket is a descriptor, so
//! the daemon raises the soft limit to the hard one before it opens anything.

/// Linux's default `fs.nr_open`: the ceiling when the hard limit is "unlimited".
const NR_OPEN_DEFAULT: libc::rlim_t = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Logs the old and new values;
/// a failure is a warning (the daemon runs with the limit it has).
pub fn raise_open_files() {
    let Some((soft, hard)) = get() else {
        tracing::warn!(
            "cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    };
    let target = if hard == libc::RLIM_INFINITY {
        NR_OPEN_DEFAULT
    } else {
        hard
    };
    if soft >= target {
        tracing::info!(soft, hard, "open-files limit already at its maximum");
        return;
    }
    let new = libc::rlimit {
        rlim_cur: target,
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit that lives across the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        tracing::info!(
            old = soft,
            new = target,
            hard,
            "raised the open-files limit"
        );
    } else {
        tracing::warn!(
            soft,
            hard,
            "cannot raise the open-files limit: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The current soft open-files limit (`None` if unreadable or unlimited).
pub fn open_files() -> Option<libc::rlim_t> {
    get()
        .map(|(soft, _)| soft)
        .filter(|s| *s != libc::RLIM_INFINITY)
}

fn get() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is a valid, writable rlimit.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) } == 0)
        .then_some((cur.rlim_cur, cur.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        raise_open_files();
        let (soft, hard) = get().expect("getrlimit");
        if hard != libc::RLIM_INFINITY {
            assert_eq!(soft, hard);
        }
        assert!(open_files().is_some_and(|n| n > 0));
    }
}
