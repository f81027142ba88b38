//! The daemon's pure modules, compiled as they are in `host/src`: the catalog, and the
//! cluster's wire format, envelope, keyring and sans-IO core.
#![allow(dead_code, unused_imports, clippy::all)]

#[path = "../../host/src/catalog/mod.rs"]
pub mod catalog;

pub mod cluster {
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
}
