//! `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, which `xds-api` lacks.
//!
//! Only the fields we set. Field numbers from Envoy's
//! `api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto`:
//! `stat_prefix = 1`, `cluster = 2` (in the `cluster_specifier` oneof),
//! `idle_timeout = 8`. Unknown fields are skipped by decoders, so a user's emitter can
//! add more with their own definition.

use xds_api::pb::google::protobuf::Duration;

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
