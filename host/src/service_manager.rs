//! systemd integration: readiness (`READY=1`) and a watchdog that is fed only while the
//! daemon's event loops make progress.
//!
//! The protocol is one datagram per message on the unix socket in `NOTIFY_SOCKET`
//! (`sd_notify(3)`), so it is implemented here rather than pulled in. The loops that must
//! not stall (gossip, announcer) each hold a [`Heartbeat`] and bump it every turn; the
//! watchdog task compares every heartbeat with its value one period earlier and sends
//! `WATCHDOG=1` only when all have moved. A loop stuck on a lock or in a busy plugin call
//! stops the pets, and systemd restarts the daemon after `WatchdogSec`.

use crate::config::service_manager::ServiceManagerConfig;
use parking_lot::Mutex;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Heartbeats of the loops that run now (dead ones are dropped when read).
pub struct Loops(Mutex<Vec<(&'static str, Weak<AtomicU64>)>>);

/// The daemon's loops: they register where they start, without plumbing.
pub static LOOPS: Loops = Loops::new();

impl Loops {
    pub const fn new() -> Self {
        Loops(Mutex::new(Vec::new()))
    }

    /// A heartbeat this registry watches for as long as it lives.
    pub fn register(&self, name: &'static str) -> Heartbeat {
        let count = Arc::new(AtomicU64::new(0));
        let mut loops = self.0.lock();
        loops.retain(|(_, w)| w.strong_count() > 0);
        loops.push((name, Arc::downgrade(&count)));
        Heartbeat { name, count }
    }

    /// `(name, identity, count)` of every live heartbeat.
    fn snapshot(&self) -> Vec<(&'static str, usize, u64)> {
        self.0
            .lock()
            .iter()
            .filter_map(|(name, w)| {
                w.upgrade()
                    .map(|c| (*name, Arc::as_ptr(&c) as usize, c.load(Ordering::Relaxed)))
            })
            .collect()
    }
}

impl Default for Loops {
    fn default() -> Self {
        Loops::new()
    }
}
/// `SIDECAR_TEST_STALL`: the loop to freeze and when.
static STALL: OnceLock<(String, Instant)> = OnceLock::new();

/// One loop's progress counter.
pub struct Heartbeat {
    name: &'static str,
    count: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat of one of the daemon's loops ([`LOOPS`]).
    pub fn register(name: &'static str) -> Self {
        LOOPS.register(name)
    }

    /// One turn of the loop. Never returns once the test-only stall of this loop is due.
    pub async fn beat(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some((name, at)) = STALL.get()
            && name == self.name
            && Instant::now() >= *at
        {
            tracing::warn!(r#loop = self.name, "SIDECAR_TEST_STALL: freezing this loop");
            std::future::pending::<()>().await;
        }
    }
}

/// Sends `sd_notify` messages; does nothing without `NOTIFY_SOCKET`.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    pub fn new(cfg: &ServiceManagerConfig) -> Self {
        if let Some((name, after)) = &cfg.stall {
            let _ = STALL.set((name.clone(), Instant::now() + *after));
        }
        let target = cfg.notify_socket.as_deref().and_then(|path| {
            let addr = match path.strip_prefix('@') {
                Some(abstract_name) => {
                    use std::os::linux::net::SocketAddrExt;
                    SocketAddr::from_abstract_name(abstract_name.as_bytes())
                }
                None => SocketAddr::from_pathname(path),
            };
            match (addr, UnixDatagram::unbound()) {
                (Ok(addr), Ok(sock)) => Some((sock, addr)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!("NOTIFY_SOCKET {path:?}: {e}; systemd will not be notified");
                    None
                }
            }
        });
        Notifier { target }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// One message (`READY=1\nSTATUS=...`). Failures are logged, never fatal.
    pub fn notify(&self, message: &str) {
        if let Some((sock, addr)) = &self.target
            && let Err(e) = sock.send_to_addr(message.as_bytes(), addr)
        {
            tracing::warn!("sd_notify {:?}: {e}", message.lines().next().unwrap_or(""));
        }
    }
}

/// Pets systemd's watchdog every half `period` while every heartbeat has moved since the
/// previous check; logs the loops that did not.
pub async fn watchdog(notifier: Arc<Notifier>, period: Duration, loops: &'static Loops) {
    let every = period / 2;
    tracing::info!(
        ?period,
        "systemd watchdog: petting every {every:?} while the event loops make progress"
    );
    let mut last = loops.snapshot();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut stalled_before = false;
    loop {
        tick.tick().await;
        let now = loops.snapshot();
        let stalled: Vec<&str> = now
            .iter()
            .filter(|(_, id, count)| {
                last.iter()
                    .any(|(_, lid, lcount)| lid == id && lcount == count)
            })
            .map(|(name, _, _)| *name)
            .collect();
        if stalled.is_empty() {
            notifier.notify("WATCHDOG=1");
            if stalled_before {
                tracing::info!("event loops progress again: petting the systemd watchdog");
            }
        } else {
            tracing::error!(
                loops = ?stalled,
                "no progress in {every:?}: not petting the systemd watchdog (systemd restarts \
                 the daemon after {period:?} without a pet)"
            );
        }
        stalled_before = !stalled.is_empty();
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_reach_the_socket_and_pets_stop_when_a_loop_stalls() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        listener
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let notifier = Arc::new(Notifier::new(&ServiceManagerConfig {
            notify_socket: Some(path.display().to_string()),
            ..ServiceManagerConfig::default()
        }));
        notifier.notify("READY=1\nSTATUS=ready");
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).expect("a message");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ready");

        static TEST_LOOPS: Loops = Loops::new();
        let beating = TEST_LOOPS.register("unit-beating");
        let frozen = Arc::new(TEST_LOOPS.register("unit-frozen"));
        frozen.beat().await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, s) = (Arc::new(beating), stop.clone());
        let beater = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                b.beat().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let keep_frozen_alive = frozen.clone();
        let dog = tokio::spawn(watchdog(notifier, Duration::from_millis(100), &TEST_LOOPS));
        // The frozen loop never beats again: no pet at all.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let pets = drain(&listener);
        assert_eq!(pets, 0, "pets while a loop is frozen");
        // Once the frozen loop is gone (its task ended), pets resume.
        drop(keep_frozen_alive);
        drop(frozen);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(drain(&listener) >= 2, "pets when every loop beats");
        stop.store(true, Ordering::Relaxed);
        let _ = beater.await;
        dog.abort();
    }

    fn drain(listener: &UnixDatagram) -> usize {
        let mut buf = [0u8; 64];
        let mut n = 0;
        while let Ok(len) = listener.recv(&mut buf) {
            assert_eq!(&buf[..len], b"WATCHDOG=1");
            n += 1;
        }
        n
    }
}
