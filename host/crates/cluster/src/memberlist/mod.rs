//! HashiCorp memberlist's wire protocol, as the NinesStack fork vendored by the Go
//! Sidecar speaks it (its `ClusterName` in `alive`/`suspect`/`dead` and in the
//! push/pull header): what a node on `SIDECAR_GOSSIP_WIRE=memberlist` speaks to join a
//! running Go Sidecar cluster. Codec ([`codec`], [`msgpack`], [`lzw`]) and protocol
//! state machine ([`core`]) are sans-IO; the daemon's transport drives them. See
//! `docs/cluster.md`, "The memberlist wire".

pub mod codec;
pub mod core;
pub mod lzw;
pub mod msgpack;

pub use self::core::{Memberlist, MlConfig, MlNode, MlStats, Output};
