//! Proxy drivers: turn catalog snapshots into a running proxy's configuration.
//!
//! Both drivers share one shape ([`feed`]): wait for the agent's readiness signal (the
//! first complete local discovery), then debounce catalog snapshots, call the
//! configured emitter plugin, validate its output and deliver it. An emitter error, a
//! trap or output that fails validation keeps the last good config in place.
//! [`validate`] checks records one by one before the HAProxy emitter sees them and
//! keeps the quarantine: an instance the proxy cannot take is left out on its own.
//!
//! * [`haproxy`]: writes haproxy.cfg atomically, verifies it with `haproxy -c` before
//!   it replaces the live file, reloads the master-worker hitlessly.
//! * [`xds`]: serves the emitter's xDS resources to Envoy over ADS (state of the world),
//!   clusters before the listeners that use them.

pub mod feed;
pub mod haproxy;
pub mod status;
pub mod validate;
pub mod wiring;
pub mod xds;

pub use feed::{Debounce, Readiness};
pub use status::ProxyStatus;
pub use wiring::{ProxyConfig, start};
