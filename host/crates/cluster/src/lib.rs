//! `sidecar-cluster`: the sans-IO cluster core. SWIM membership with Lifeguard,
//! dissemination of catalog changes, digest-first anti-entropy, the wire format and its
//! encryption, and the membership view readers consume. No sockets and no clock of its
//! own: the daemon's transport feeds it bytes and the time. See `docs/cluster.md`.
//!
//! The deterministic simulator ([`sim`]) is behind the `sim` feature: tests and
//! benchmarks use it; the daemon binary does not contain it.

pub mod antientropy;
pub mod crypto;
pub mod dissemination;
pub mod memberlist;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod swim;
pub mod view;
pub mod wire;

pub use view::{MemberInfo, MemberList};
pub use wire::State;
