//! Guest SDK for sidecar plugins: everything a plugin written in Rust needs besides its
//! own policy.
//!
//! # Contract version
//!
//! The bindings are generated from the WIT package **`sidecar:plugin@0.1.3`** (the
//! repository's `wit/` folder; [`WIT_PACKAGE`]). A plugin built with this SDK loads in any
//! host that implements `sidecar:plugin` 0.1.3 or a later 0.1.x (the host links
//! semver-compatibly; within 0.x only additive changes are made).
//!
//! Linking this crate puts the 0.1.3 worlds' metadata into the component, and
//! `wit-component` merges it with any older version the crate generated itself, so a
//! guest that must target an older contract cannot use this SDK
//! (`plugins/testing/check-v010` and `check-v011`, built against `wit/archive/0.1.0`
//! and `wit/archive/0.1.1`, do not; `wit/archive/0.1.2` is kept for the same use).
//!
//! # Writing a plugin
//!
//! Depend on this crate, make the crate a `cdylib` built for `wasm32-wasip2`, implement
//! the trait of the plugin's kind and call that kind's `export!` macro once:
//!
//! | kind (WIT world)   | module               | trait                                 |
//! |--------------------|----------------------|---------------------------------------|
//! | `namer`            | [`namer`]            | [`namer::Namer`]                      |
//! | `health-check`     | [`health_check`]     | [`health_check::HealthCheck`]         |
//! | `discovery-source` | [`discovery_source`] | [`discovery_source::DiscoverySource`] |
//! | `proxy-emitter`    | [`proxy_emitter`]    | [`proxy_emitter::ProxyEmitter`]       |
//!
//! ```no_run
//! use sidecar_plugin_sdk::health_check::{self, CheckRequest, CheckResult, HealthCheck};
//!
//! struct Always;
//!
//! impl HealthCheck for Always {
//!     fn check(_req: CheckRequest) -> Result<CheckResult, String> {
//!         Ok(CheckResult::healthy("always successful"))
//!     }
//! }
//!
//! health_check::export!(Always);
//! ```
//!
//! Every trait has a `configure` that receives the plugin's settings from plugins.toml;
//! the default accepts none. Parse settings with [`settings::Settings`]. The host's
//! imports are [`log`], [`clock`], [`http`], [`process`], and since 0.1.2 [`net`] (TCP
//! connects, gRPC health checks) and [`local_services`] (TTL reports, local statuses);
//! the shared records are in [`types`]. Keep state in `thread_local!`s: an instance lives across calls but may be
//! replaced at any time.
//!
//! # Features
//!
//! * `envoy`: [`envoy::TcpProxy`], the xDS message `xds-api` lacks (pulls in `prost` and
//!   `xds-api`).
//!
//! # How the bindings are generated
//!
//! Each world's bindings are generated once, by `wit_bindgen::generate!` in its own
//! crate under `plugins/sdk/bindings/` (`sidecar-plugin-sdk-namer`, ...), from the WIT
//! folder at a path relative to that crate's `CARGO_MANIFEST_DIR`. The interfaces all
//! worlds import (`types` and the host imports) are generated once, in
//! `sidecar-plugin-sdk-base` (world `plugin-host`), and the four worlds refer to them,
//! so a [`types::Service`] is the same type whichever world it comes from. One crate per
//! world because every world exports `lifecycle`, and wit-bindgen's public export macro
//! for an interface is named after the interface alone, so two worlds in one crate
//! define it twice (wit-bindgen issue #1502). Plugins never name those crates.

pub mod settings;
pub mod text;

#[cfg(feature = "envoy")]
pub mod envoy;

pub use settings::Settings;
pub use text::truncate;

/// The WIT package (and version) these bindings were generated from.
pub const WIT_PACKAGE: &str = "sidecar:plugin@0.1.3";

/// Generated bindings, one crate per world. Use the re-exports ([`types`], [`namer`],
/// ...) instead.
#[doc(hidden)]
pub mod bindings {
    pub use sidecar_plugin_sdk_discovery_source as discovery_source;
    pub use sidecar_plugin_sdk_health_check as health_check;
    pub use sidecar_plugin_sdk_namer as namer;
    pub use sidecar_plugin_sdk_proxy_emitter as proxy_emitter;
}

pub use sidecar_plugin_sdk_base::sidecar::plugin::{
    clock, http, local_services, log, net, process, types,
};

/// What the macros expand to needs, at paths that work from any crate.
#[doc(hidden)]
pub mod __private {
    pub use std::result::Result;
    pub use std::string::String;
    pub use std::vec::Vec;

    /// The `settings` argument of `configure`.
    pub type Pairs = Vec<(String, String)>;

    /// The default `configure`: no settings.
    pub fn no_settings(settings: &[(String, String)]) -> Result<(), String> {
        crate::Settings::new(settings, &[]).map(drop)
    }
}

/// Implements the `lifecycle` export of world `$world` (a module of [`bindings`]) for
/// `$ty` from its kind's trait `$kind`; the part every `export!` macro shares.
#[doc(hidden)]
#[macro_export]
macro_rules! __impl_lifecycle {
    ($ty:ident, $world:ident, $kind:path) => {
        impl $crate::bindings::$world::exports::sidecar::plugin::lifecycle::Guest for $ty {
            fn configure(
                settings: $crate::__private::Pairs,
            ) -> $crate::__private::Result<(), $crate::__private::String> {
                <$ty as $kind>::configure(settings)
            }
        }
    };
}

/// A service namer (world `namer`): turns a Docker container into a service name.
pub mod namer {
    pub use crate::types::Container;

    /// Implement this, then call [`export!`](crate::namer::export) with the type.
    pub trait Namer {
        /// Validates and keeps the settings (see [`Settings`](crate::Settings)); an error
        /// disables the plugin with that message. The default accepts no settings.
        fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
            crate::__private::no_settings(&settings)
        }

        /// The service name for `c`. An error is logged and the host falls back to the
        /// image name.
        fn name(c: Container) -> Result<String, String>;
    }

    #[doc(inline)]
    pub use crate::__export_namer as export;

    #[doc(hidden)]
    pub use crate::bindings::namer::exports::sidecar::plugin::naming::Guest as __Guest;
}

/// Exports `$ty` (a [`namer::Namer`]) as this component's namer.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_namer {
    ($ty:ident) => {
        const _: () = {
            $crate::__impl_lifecycle!($ty, namer, $crate::namer::Namer);
            impl $crate::namer::__Guest for $ty {
                fn name(
                    c: $crate::namer::Container,
                ) -> $crate::__private::Result<$crate::__private::String, $crate::__private::String>
                {
                    <$ty as $crate::namer::Namer>::name(c)
                }
            }
    $crate::bindings::namer::export!($ty with_types_in $crate::bindings::namer);
        };
    };
}

/// A health-check type (world `health-check`): decides whether one local service
/// instance is healthy.
pub mod health_check {
    pub use crate::bindings::health_check::exports::sidecar::plugin::health::{
        CheckRequest, CheckResult, CheckStatus,
    };

    /// Implement this, then call [`export!`](crate::health_check::export) with the type.
    pub trait HealthCheck {
        /// Validates and keeps the settings (see [`Settings`](crate::Settings)); an error
        /// disables the plugin with that message. The default accepts no settings.
        fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
            crate::__private::no_settings(&settings)
        }

        /// Runs the check. `Err` means the check could not be carried out (bad
        /// arguments, denied capability); the instance is marked unhealthy with it.
        fn check(req: CheckRequest) -> Result<CheckResult, String>;
    }

    #[doc(inline)]
    pub use crate::__export_health_check as export;

    #[doc(hidden)]
    pub use crate::bindings::health_check::exports::sidecar::plugin::health::Guest as __Guest;
}

/// Exports `$ty` (a [`health_check::HealthCheck`]) as this component's health check.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_health_check {
    ($ty:ident) => {
        const _: () = {
            $crate::__impl_lifecycle!($ty, health_check, $crate::health_check::HealthCheck);
            impl $crate::health_check::__Guest for $ty {
                fn check(
                    req: $crate::health_check::CheckRequest,
                ) -> $crate::__private::Result<
                    $crate::health_check::CheckResult,
                    $crate::__private::String,
                > {
                    <$ty as $crate::health_check::HealthCheck>::check(req)
                }
            }
            $crate::bindings::health_check::export!(
                $ty with_types_in $crate::bindings::health_check
            );
        };
    };
}

/// A discovery source (world `discovery-source`): reports the services this host runs.
pub mod discovery_source {
    pub use crate::bindings::discovery_source::exports::sidecar::plugin::discovery::{
        CheckSpec, Discovered,
    };

    /// Implement this, then call [`export!`](crate::discovery_source::export) with the
    /// type.
    pub trait DiscoverySource {
        /// Validates and keeps the settings (see [`Settings`](crate::Settings)); an error
        /// disables the plugin with that message. The default accepts no settings.
        fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
            crate::__private::no_settings(&settings)
        }

        /// The complete current set of services (not a delta). An error keeps the
        /// previous result.
        fn discover() -> Result<Vec<Discovered>, String>;
    }

    #[doc(inline)]
    pub use crate::__export_discovery_source as export;

    #[doc(hidden)]
    pub use crate::bindings::discovery_source::exports::sidecar::plugin::discovery::Guest as __Guest;
}

/// Exports `$ty` (a [`discovery_source::DiscoverySource`]) as this component's discovery
/// source.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_discovery_source {
    ($ty:ident) => {
        const _: () = {
            $crate::__impl_lifecycle!(
                $ty,
                discovery_source,
                $crate::discovery_source::DiscoverySource
            );
            impl $crate::discovery_source::__Guest for $ty {
                fn discover() -> $crate::__private::Result<
                    $crate::__private::Vec<$crate::discovery_source::Discovered>,
                    $crate::__private::String,
                > {
                    <$ty as $crate::discovery_source::DiscoverySource>::discover()
                }
            }
            $crate::bindings::discovery_source::export!(
                $ty with_types_in $crate::bindings::discovery_source
            );
        };
    };
}

/// A proxy config emitter (world `proxy-emitter`): turns the catalog into a proxy's
/// configuration.
pub mod proxy_emitter {
    pub use crate::bindings::proxy_emitter::exports::sidecar::plugin::emitter::{
        EmitRequest, Emitted, XdsResource,
    };

    /// Implement this, then call [`export!`](crate::proxy_emitter::export) with the type.
    pub trait ProxyEmitter {
        /// Validates and keeps the settings (see [`Settings`](crate::Settings)); an error
        /// disables the plugin with that message. The default accepts no settings.
        fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
            crate::__private::no_settings(&settings)
        }

        /// The proxy configuration for the catalog in `req`.
        fn emit(req: EmitRequest) -> Result<Emitted, String>;
    }

    #[doc(inline)]
    pub use crate::__export_proxy_emitter as export;

    #[doc(hidden)]
    pub use crate::bindings::proxy_emitter::exports::sidecar::plugin::emitter::Guest as __Guest;
}

/// Exports `$ty` (a [`proxy_emitter::ProxyEmitter`]) as this component's proxy emitter.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_proxy_emitter {
    ($ty:ident) => {
        const _: () = {
            $crate::__impl_lifecycle!($ty, proxy_emitter, $crate::proxy_emitter::ProxyEmitter);
            impl $crate::proxy_emitter::__Guest for $ty {
                fn emit(
                    req: $crate::proxy_emitter::EmitRequest,
                ) -> $crate::__private::Result<
                    $crate::proxy_emitter::Emitted,
                    $crate::__private::String,
                > {
                    <$ty as $crate::proxy_emitter::ProxyEmitter>::emit(req)
                }
            }
            $crate::bindings::proxy_emitter::export!(
                $ty with_types_in $crate::bindings::proxy_emitter
            );
        };
    };
}
