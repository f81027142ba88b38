//! The gossip transport: the tokio side of the cluster. It owns the UDP and TCP
//! sockets, feeds the sans-IO core (`sidecar-cluster`) bytes and the time, applies what
//! it decides to the shared catalog, and publishes the membership view. See
//! `docs/cluster.md`.

pub mod handle;
pub mod memberlist;
pub mod transport;

pub use handle::{ClusterCounters, ClusterHandle};
pub use sidecar_cluster::{MemberInfo, MemberList, State};
pub use transport::start;
