//! The default plugins, compiled from `plugins/` by build.rs and embedded in the binary,
//! and the defaults that go with them (check-type names, grants).

use std::path::Path;

/// One embedded `.wasm` component.
pub(crate) struct EmbeddedPlugin {
    pub name: &'static str,
    pub description: &'static str,
    /// sha256 of `wasm`, hex; computed at build time so the compile-cache lookup at
    /// start does not hash the bytes again.
    pub sha256: &'static str,
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));

/// The namer used when neither plugins.toml nor `SERVICES_NAMER` choose one.
pub const DEFAULT_NAMER: &str = "namer-label";

/// Sidecar's check types, ours (`Tcp`, `GrpcHealth`, `Ttl`, `Alias`), and the plugins
/// that implement them; plugins.toml can remap them and add its own names. A type
/// nobody registered is an error (the service stays UNKNOWN), not Sidecar's silent
/// `HttpGet`.
pub const DEFAULT_CHECKS: [(&str, &str); 7] = [
    ("HttpGet", "check-httpget"),
    ("External", "check-external"),
    ("AlwaysSuccessful", "check-always"),
    ("Tcp", "check-tcp"),
    ("GrpcHealth", "check-grpc"),
    ("Ttl", "check-ttl"),
    ("Alias", "check-alias"),
];

/// `http` grant of `check-httpget` unless plugins.toml sets one: this host only, which
/// covers Sidecar's usual check URLs (`http://{{ host }}:…`, `http://:port/…`).
pub const HTTPGET_DEFAULT_HTTP: [&str; 5] = [
    "127.0.0.1:*",
    "localhost:*",
    "[::1]:*",
    "{advertise_ip}:*",
    "{hostname}:*",
];

/// `net` grant of `check-tcp` and `check-grpc` unless plugins.toml sets one: this host
/// only, as for `check-httpget`.
pub const NET_CHECKS_DEFAULT_NET: [&str; 5] = HTTPGET_DEFAULT_HTTP;

/// Default `net` grant of an embedded plugin.
pub(crate) fn default_net_grant(name: &str) -> &'static [&'static str] {
    match name {
        "check-tcp" | "check-grpc" => &NET_CHECKS_DEFAULT_NET,
        _ => &[],
    }
}

pub(crate) fn find(name: &str) -> Option<&'static EmbeddedPlugin> {
    EMBEDDED.iter().find(|p| p.name == name)
}

/// Names of the embedded plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|p| p.name)
}

pub fn is_embedded(name: &str) -> bool {
    find(name).is_some()
}

/// Default grants of an embedded plugin: (`http` patterns, `exec`).
pub(crate) fn default_grants(name: &str) -> (&'static [&'static str], bool) {
    match name {
        "check-httpget" => (&HTTPGET_DEFAULT_HTTP, false),
        "check-external" => (&[], true),
        _ => (&[], false),
    }
}

/// Where build.rs put every guest it built, test-only ones (`chaos`, `check-v010`)
/// included: `<workspace>/target/plugins/wasm32-wasip2/release`.
pub fn built_wasm_dir() -> &'static Path {
    Path::new(WASM_DIR)
}
