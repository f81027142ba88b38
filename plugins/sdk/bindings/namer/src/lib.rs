//! Part of `sidecar-plugin-sdk`; use that crate. The bindings of world `namer`
//! (`wit/worlds.wit`), with the shared interfaces taken from `sidecar-plugin-sdk-base`.
//!
//! One crate per world because every world exports `lifecycle`, and wit-bindgen names
//! the public export macro of an interface after the interface alone: two worlds in one
//! crate would define it twice (wit-bindgen issue #1502).

wit_bindgen::generate!({
    world: "namer",
    // Relative to this crate's CARGO_MANIFEST_DIR (plugins/sdk/bindings/namer).
    path: "../../../../wit",
    with: {
        "sidecar:plugin/types@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::types,
        "sidecar:plugin/log@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::log,
        "sidecar:plugin/clock@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::clock,
        "sidecar:plugin/http@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::http,
        "sidecar:plugin/process@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::process,
        "sidecar:plugin/net@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::net,
        "sidecar:plugin/local-services@0.1.3": sidecar_plugin_sdk_base::sidecar::plugin::local_services,
    },
    // The SDK's export macros call this world's `export!` from the plugin's crate.
    pub_export_macro: true,
});
