//! Cluster core: SWIM membership with Lifeguard, dissemination of catalog changes,
//! digest-first anti-entropy, the wire format and its encryption, the tokio transport
//! and a deterministic simulator. See `docs/cluster.md`.

pub mod antientropy;
pub mod config;
pub mod crypto;
pub mod dissemination;
pub mod handle;
pub mod sim;
pub mod swim;
pub mod transport;
pub mod wire;

pub use config::{ClusterArgs, ClusterConfig};
pub use handle::{ClusterCounters, ClusterHandle, MemberInfo, MemberList};
pub use transport::start;
pub use wire::State;
