//! The cluster's pure modules, compiled from `host/src/cluster`.

#[path = "../../../host/src/cluster/antientropy.rs"]
pub mod antientropy;
#[path = "../../../host/src/cluster/crypto.rs"]
pub mod crypto;
#[path = "../../../host/src/cluster/dissemination.rs"]
pub mod dissemination;
#[path = "../../../host/src/cluster/swim/mod.rs"]
pub mod swim;
#[path = "../../../host/src/cluster/wire/mod.rs"]
pub mod wire;
