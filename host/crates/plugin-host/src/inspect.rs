//! What a component is, read from its type: the plugin kind (which interface it
//! exports) and the `sidecar:plugin` version it was built against (the version in its
//! import/export names, e.g. `sidecar:plugin/health@0.1.0`).

use super::Kind;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract this host implements.
pub const HOST_WIT_VERSION: &str = "0.1.3";
const PACKAGE: &str = "sidecar:plugin/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspection {
    /// Kinds whose interface the component exports (normally exactly one).
    pub kinds: Vec<Kind>,
    /// `sidecar:plugin` version of its exports (else imports), if it names one.
    pub wit_version: Option<String>,
}

pub(crate) fn inspect(engine: &Engine, component: &Component) -> Inspection {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let kinds = Kind::ALL
        .into_iter()
        .filter(|k| {
            exports
                .iter()
                .any(|e| interface_of(e).is_some_and(|(iface, _)| iface == k.export_interface()))
        })
        .collect();
    let wit_version = exports
        .iter()
        .chain(imports.iter())
        .find_map(|n| interface_of(n).and_then(|(_, v)| v))
        .map(str::to_string);
    Inspection { kinds, wit_version }
}

/// `sidecar:plugin/health@0.1.0` -> (`health`, Some(`0.1.0`)).
fn interface_of(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(PACKAGE)?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (rest, None),
    })
}

/// Can this host run a plugin built against `version`? Within `0.x`, the minor is the
/// major (semver): `0.1.*` is accepted; a newer patch works as long as the plugin
/// does not import functions this host lacks (the linker then names them).
pub(crate) fn compatible(version: &str) -> Result<(), String> {
    let major_minor = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (major_minor(version), major_minor(HOST_WIT_VERSION)) {
        (Some(p), Some(h)) if p == h => Ok(()),
        _ => Err(format!(
            "built against sidecar:plugin@{version}, but this sidecar implements sidecar:plugin@{HOST_WIT_VERSION} \
             (compatible: 0.1.x)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        assert_eq!(
            interface_of("sidecar:plugin/health@0.1.0"),
            Some(("health", Some("0.1.0")))
        );
        assert_eq!(interface_of("wasi:cli/stdout@0.2.6"), None);
        assert!(compatible("0.1.0").is_ok());
        assert!(compatible("0.1.7").is_ok());
        assert!(
            compatible("0.2.0")
                .expect_err("new minor")
                .contains("sidecar:plugin@0.2.0")
        );
        assert!(compatible("1.0.0").is_err());
    }
}
