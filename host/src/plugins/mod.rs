//! Policy plugins: the kinds as Rust traits ([`api`]) and the WebAssembly runtime that
//! implements them for components.

pub mod api;

pub use api::*;
