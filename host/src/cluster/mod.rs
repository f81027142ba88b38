//! Cluster core: SWIM membership with Lifeguard, dissemination of catalog changes,
//! digest-first anti-entropy, the wire format and its encryption, the tokio transport
//! and a deterministic simulator. See `docs/cluster.md`.

pub mod antientropy;
pub mod crypto;
pub mod dissemination;
pub mod sim;
pub mod swim;
pub mod wire;
