//! Part of `sidecar-plugin-sdk`; use that crate. The bindings of world `plugin-host`
//! (`wit/worlds.wit`): the host imports (`log`, `clock`, `http`, `process`, `net`, `local-services`) and `types`,
//! generated once and shared by the four plugin worlds' bindings.

wit_bindgen::generate!({
    world: "plugin-host",
    // Relative to this crate's CARGO_MANIFEST_DIR (plugins/sdk/bindings/base).
    path: "../../../../wit",
});
