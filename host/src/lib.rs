//! `sidecar`: a peer-to-peer service-discovery daemon whose policy runs as WebAssembly
//! plugins.
//!
//! Data flows one way: discovery -> catalog -> gossip / API / proxy drivers. The
//! [`catalog`] is pure data and rules; [`shared_catalog`] is the daemon's one instance of
//! it; everything else either writes local records into it or reads snapshots of it.

pub mod agent;
pub mod announcer;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod discovery;
pub mod health;
pub mod listeners;
pub mod memory;
pub mod metrics;
pub mod plugins;
pub mod proxy;
pub mod shared_catalog;
