//! `sidecar`: a peer-to-peer service-discovery daemon whose policy runs as WebAssembly
//! plugins.
//!
//! Data flows one way: discovery -> catalog -> gossip / API / proxy drivers, and the
//! crate graph enforces it: `sidecar-catalog` (the LWW model and rules, no I/O) is
//! below `sidecar-cluster` (the sans-IO SWIM core and wire) and `sidecar-plugin-host`
//! (the wasmtime runtime); this crate wires them to sockets, Docker, HAProxy and Envoy.
//! [`config`] alone reads the environment, the command line and plugins.toml;
//! [`shared_catalog`] is the daemon's one instance of the catalog; everything else
//! either writes local records into it or reads snapshots of it. See
//! `docs/architecture.md`.

pub mod agent;
pub mod announcer;
pub mod api;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod dns;
pub mod gossip;
pub mod health;
pub mod limits;
pub mod listeners;
pub mod maintenance;
pub mod memory;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod service_manager;
pub mod shared_catalog;
