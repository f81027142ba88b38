//! Envoy xDS pieces shared by the `proxy-envoy` plugin and the daemon's xDS server
//! (feature `envoy`).

use xds_api::pb::google::protobuf::Duration;

/// `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, which `xds-api` lacks.
///
/// Only the fields sidecar sets, with the field numbers of Envoy's
/// `api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto`:
/// `stat_prefix = 1`, `cluster = 2` (in the `cluster_specifier` oneof),
/// `idle_timeout = 8`. Decoders skip unknown fields, so a user's emitter can add more
/// with its own definition; the end-to-end tests prove Envoy accepts this one.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TcpProxy {
    #[prost(string, tag = "1")]
    pub stat_prefix: String,
    #[prost(string, tag = "2")]
    pub cluster: String,
    #[prost(message, optional, tag = "8")]
    pub idle_timeout: Option<Duration>,
}

impl ::prost::Name for TcpProxy {
    const NAME: &'static str = "TcpProxy";
    const PACKAGE: &'static str = "envoy.extensions.filters.network.tcp_proxy.v3";
    fn full_name() -> String {
        format!("{}.{}", Self::PACKAGE, Self::NAME)
    }
    fn type_url() -> String {
        format!("type.googleapis.com/{}", Self::full_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::{Message, Name};

    #[test]
    fn type_url_and_field_numbers() {
        assert_eq!(
            TcpProxy::type_url(),
            "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
        );
        let bytes = TcpProxy {
            stat_prefix: "a".into(),
            cluster: "b".into(),
            idle_timeout: None,
        }
        .encode_to_vec();
        // Field 1 and field 2, both length-delimited (wire type 2).
        assert_eq!(bytes, [0x0a, 1, b'a', 0x12, 1, b'b']);
    }
}
