//! Debounced catalog snapshots for the proxy drivers.
//!
//! The catalog publishes a snapshot per change burst; a discovery sweep or a gossip
//! round can still produce several within milliseconds. Drivers act once per quiet
//! period (`quiet` without a new snapshot), and at the latest `max` after the first
//! unhandled change, so a steady stream of changes cannot postpone delivery forever.

use crate::shared_catalog::Snapshot;
use sidecar_plugin_host::EmitRequest;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The agent's readiness signal: `true` once local discovery has completed a full pass.
/// Drivers publish nothing before it, so a restarted daemon never replaces a proxy's
/// config with a half-empty catalog.
pub type Readiness = watch::Receiver<bool>;

/// A readiness signal that is already set (tests, tools).
pub fn ready_now() -> Readiness {
    let (tx, rx) = watch::channel(true);
    // Keep the value after the sender is gone.
    drop(tx);
    rx
}

/// Waits until `ready` is true. Returns false if the signal's sender went away first
/// (the agent is shutting down).
pub async fn wait_ready(ready: &mut Readiness) -> bool {
    ready.wait_for(|r| *r).await.is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    /// Act after this long without a new snapshot.
    pub quiet: Duration,
    /// Act at the latest this long after the first change of a burst.
    pub max: Duration,
}

impl Debounce {
    pub const fn new(quiet: Duration, max: Duration) -> Self {
        Debounce { quiet, max }
    }
}

/// Waits for the next change and its burst to settle; returns the latest snapshot, or
/// `None` when the catalog is gone.
pub async fn next_change<T: Clone>(rx: &mut watch::Receiver<T>, debounce: Debounce) -> Option<T> {
    rx.changed().await.ok()?;
    let deadline = Instant::now() + debounce.max;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = debounce.quiet.min(deadline - now);
        match tokio::time::timeout(wait, rx.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return None,
            Err(_) => break,
        }
    }
    Some(rx.borrow_and_update().clone())
}

/// What an emitter gets for a snapshot.
pub fn emit_request(snapshot: &Snapshot) -> EmitRequest {
    EmitRequest {
        services: snapshot.services_by_updated(),
        hostname: snapshot.state.hostname.clone(),
        cluster_name: snapshot.state.cluster_name.clone(),
        sidecar_proxies: snapshot.sidecar_proxies.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(generation: u64) -> u64 {
        generation
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_coalesce_and_max_bounds_the_delay() {
        let (tx, mut rx) = watch::channel(snap(0));
        let d = Debounce::new(Duration::from_millis(100), Duration::from_secs(1));
        let sender = tokio::spawn(async move {
            // A change every 50 ms for 3 s: quiet never happens.
            for g in 1..=60 {
                tx.send_replace(snap(g));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx
        });
        let start = Instant::now();
        let first = next_change(&mut rx, d).await.expect("snapshot");
        let waited = start.elapsed();
        assert!(waited <= Duration::from_millis(1050), "{waited:?}");
        assert!(first >= 19, "latest at the deadline: {first}");
        let tx = sender.await.expect("sender");
        tx.send_replace(snap(100));
        let start = Instant::now();
        let last = next_change(&mut rx, d).await.expect("snapshot");
        assert_eq!(last, 100);
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn readiness_waits_for_true() {
        let (tx, mut rx) = watch::channel(false);
        let waiter = tokio::spawn(async move { wait_ready(&mut rx).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tx.send_replace(true);
        assert!(waiter.await.expect("joined"));
        assert!(wait_ready(&mut ready_now()).await);
    }
}
