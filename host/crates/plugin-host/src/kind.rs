//! The plugin kinds: one WIT world each.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namer,
    HealthCheck,
    DiscoverySource,
    ProxyEmitter,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Namer,
        Kind::HealthCheck,
        Kind::DiscoverySource,
        Kind::ProxyEmitter,
    ];

    /// The WIT world name, also the spelling used in plugins.toml (`kind = "namer"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namer => "namer",
            Kind::HealthCheck => "health-check",
            Kind::DiscoverySource => "discovery-source",
            Kind::ProxyEmitter => "proxy-emitter",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The interface a component of this kind exports besides `lifecycle`; how the
    /// runtime recognises the kind of a component.
    pub(crate) fn export_interface(self) -> &'static str {
        match self {
            Kind::Namer => "naming",
            Kind::HealthCheck => "health",
            Kind::DiscoverySource => "discovery",
            Kind::ProxyEmitter => "emitter",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
