//! The daemon's pure modules, compiled as they are in `host/src`: the catalog, and the
//! cluster's wire format, envelope, keyring and sans-IO core.
#![allow(dead_code, unused_imports, clippy::all)]

#[path = "../../host/src/catalog/mod.rs"]
pub mod catalog;

pub mod cluster;
