//! A minimal Envoy bootstrap that takes everything else from our ADS server.
//!
//! The ADS cluster must speak HTTP/2 (gRPC); `set_node_on_first_message_only` keeps
//! requests small. We serve every node the same resources, so `node.id` is free-form
//! (Sidecar served only node id = hostname).

use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub node_id: String,
    pub node_cluster: String,
    /// Our ADS server.
    pub ads: SocketAddr,
    /// Envoy's admin interface; `None` leaves it out.
    pub admin: Option<SocketAddr>,
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn bootstrap_yaml(o: &BootstrapOptions) -> String {
    let admin = match o.admin {
        Some(a) => format!(
            "admin:\n  address:\n    socket_address: {{ address: {}, port_value: {} }}\n",
            yaml_str(&a.ip().to_string()),
            a.port()
        ),
        None => String::new(),
    };
    format!(
        r#"# Envoy bootstrap for sidecar's xDS server (ADS, state of the world, xDS v3).
node:
  id: {id}
  cluster: {cluster}
{admin}dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: {{ cluster_name: sidecar_xds }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
  - name: sidecar_xds
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{ http2_protocol_options: {{}} }}
    load_assignment:
      cluster_name: sidecar_xds
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {ads_ip}, port_value: {ads_port} }}
"#,
        id = yaml_str(&o.node_id),
        cluster = yaml_str(&o.node_cluster),
        ads_ip = yaml_str(&o.ads.ip().to_string()),
        ads_port = o.ads.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_the_ads_server_over_http2() {
        let y = bootstrap_yaml(&BootstrapOptions {
            node_id: "host1".into(),
            node_cluster: "default".into(),
            ads: "127.0.0.1:7776".parse().expect("addr"),
            admin: Some("127.0.0.1:9901".parse().expect("addr")),
        });
        assert!(y.contains("socket_address: { address: \"127.0.0.1\", port_value: 7776 }"));
        assert!(y.contains("http2_protocol_options"));
        assert!(y.contains("id: \"host1\""));
        assert!(y.contains("port_value: 9901"));
    }
}
