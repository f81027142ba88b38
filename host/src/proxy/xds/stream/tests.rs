use super::*;
use crate::proxy::xds::resources::{CLUSTER, LISTENER};
use prost::Message;
use sidecar_plugin_host::XdsResource;
use xds_api::pb::envoy::config::cluster::v3::Cluster;
use xds_api::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use xds_api::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use xds_api::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener};

fn addr(ip: &str, port: u32) -> Option<Address> {
    Some(Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    })
}

/// A world of services `name -> (listener port, endpoint ports)`.
fn world(services: &[(&str, u32, &[u32])]) -> Arc<XdsSnapshot> {
    let mut out = Vec::new();
    for (name, lport, eps) in services {
        let cluster = Cluster {
            name: name.to_string(),
            ..Default::default()
        };
        out.push(XdsResource {
            type_url: CLUSTER.into(),
            name: name.to_string(),
            value: cluster.encode_to_vec(),
        });
        let cla = ClusterLoadAssignment {
            cluster_name: name.to_string(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: eps
                    .iter()
                    .map(|p| LbEndpoint {
                        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                            address: addr("127.0.0.1", *p),
                            ..Default::default()
                        })),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        out.push(XdsResource {
            type_url: ENDPOINT.into(),
            name: name.to_string(),
            value: cla.encode_to_vec(),
        });
        let l = Listener {
            name: name.to_string(),
            address: addr("127.0.0.1", *lport),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "x".into(),
                    config_type: None,
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        out.push(XdsResource {
            type_url: LISTENER.into(),
            name: name.to_string(),
            value: l.encode_to_vec(),
        });
    }
    let (snap, bad) = XdsSnapshot::build(out);
    assert!(bad.is_empty(), "{bad:?}");
    Arc::new(snap)
}

fn req(type_url: &str, names: &[&str], nonce: &str) -> Request {
    Request {
        type_url: type_url.into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        nonce: nonce.into(),
        ..Request::default()
    }
}

fn ack(r: &Response, names: &[&str]) -> Request {
    Request {
        version_info: r.version.clone(),
        ..req(&r.type_url, names, &r.nonce)
    }
}

fn names(r: &Response) -> Vec<&str> {
    r.resources.iter().map(|r| r.name.as_str()).collect()
}

fn only<'a>(rs: &'a [Response], type_url: &str) -> &'a Response {
    assert_eq!(rs.len(), 1, "expected one response, got {rs:?}");
    assert_eq!(rs[0].type_url, type_url);
    &rs[0]
}

/// Drives a fresh stream through Envoy's startup: CDS, EDS, then LDS.
fn started(s: &mut Stream, snap: Arc<XdsSnapshot>, now: Instant) -> (Response, Response, Response) {
    assert!(
        s.on_snapshot(snap, now).is_empty(),
        "nothing subscribed yet"
    );
    let cds = only(&s.on_request(req(CLUSTER, &[], ""), now), CLUSTER).clone();
    assert!(
        s.on_request(req(LISTENER, &[], ""), now).is_empty(),
        "listeners wait for clusters"
    );
    let cluster_names: Vec<&str> = names(&cds);
    let eds = only(
        &s.on_request(req(ENDPOINT, &cluster_names, ""), now),
        ENDPOINT,
    )
    .clone();
    assert!(s.on_request(ack(&eds, &cluster_names), now).is_empty());
    let lds = only(&s.on_request(ack(&cds, &[]), now), LISTENER).clone();
    assert!(s.on_request(ack(&lds, &[]), now).is_empty());
    assert_eq!(s.phase(), Phase::Idle);
    (cds, eds, lds)
}

#[test]
fn nothing_is_served_before_the_first_snapshot() {
    let mut s = Stream::new();
    let now = Instant::now();
    assert!(s.on_request(req(CLUSTER, &[], ""), now).is_empty());
    assert!(s.on_request(req(LISTENER, &[], ""), now).is_empty());
    let out = s.on_snapshot(world(&[("a", 10000, &[9001])]), now);
    assert_eq!(only(&out, CLUSTER).resources.len(), 1);
}

#[test]
fn startup_publishes_clusters_endpoints_then_listeners() {
    let mut s = Stream::new();
    let (cds, eds, lds) = started(&mut s, world(&[("a", 10000, &[9001])]), Instant::now());
    assert_eq!(names(&cds), ["a"]);
    assert_eq!(names(&eds), ["a"]);
    assert_eq!(names(&lds), ["a"]);
}

#[test]
fn endpoint_change_sends_only_eds() {
    let mut s = Stream::new();
    let now = Instant::now();
    let (_, eds, _) = started(&mut s, world(&[("a", 10000, &[9001])]), now);
    let out = s.on_snapshot(world(&[("a", 10000, &[9002])]), now);
    let eds2 = only(&out, ENDPOINT).clone();
    assert_ne!(eds2.version, eds.version);
    assert!(s.on_request(ack(&eds2, &["a"]), now).is_empty());
    assert_eq!(s.phase(), Phase::Idle);
}

#[test]
fn a_re_request_with_an_acked_nonce_is_answered_again() {
    let mut s = Stream::new();
    let now = Instant::now();
    let (_, eds, _) = started(&mut s, world(&[("a", 10000, &[9001])]), now);
    // After a cluster update Envoy asks for EDS again with the nonce it already ACKed.
    let again = s.on_request(ack(&eds, &["a"]), now);
    let again = only(&again, ENDPOINT);
    assert_eq!(again.version, eds.version);
    assert_ne!(again.nonce, eds.nonce);
}

#[test]
fn nack_keeps_the_version_and_is_not_resent() {
    let mut s = Stream::new();
    let now = Instant::now();
    let (_, eds, _) = started(&mut s, world(&[("a", 10000, &[9001])]), now);
    let out = s.on_snapshot(world(&[("a", 10000, &[9002])]), now);
    let bad = only(&out, ENDPOINT).clone();
    let nack = Request {
        error: Some("rejected".into()),
        version_info: eds.version.clone(),
        ..req(ENDPOINT, &["a"], &bad.nonce)
    };
    assert!(s.on_request(nack.clone(), now).is_empty(), "no resend loop");
    assert_eq!(
        s.events.nacks,
        vec![(ENDPOINT.to_string(), "rejected".to_string())]
    );
    let report = s.report();
    let r = report.iter().find(|r| r.type_url == ENDPOINT).expect("eds");
    assert_eq!(r.acked_version.as_deref(), Some(eds.version.as_str()));
    assert_eq!(r.nacked_version.as_deref(), Some(bad.version.as_str()));
    // A later change is sent.
    let out = s.on_snapshot(world(&[("a", 10000, &[9003])]), now);
    assert_eq!(only(&out, ENDPOINT).resources.len(), 1);
}

#[test]
fn stale_nonces_are_ignored_and_one_response_is_in_flight() {
    let mut s = Stream::new();
    let now = Instant::now();
    let (_, eds, _) = started(&mut s, world(&[("a", 10000, &[9001])]), now);
    let first = only(
        &s.on_snapshot(world(&[("a", 10000, &[9002])]), now),
        ENDPOINT,
    )
    .clone();
    // A burst while the first is in flight: nothing more is sent.
    assert!(
        s.on_snapshot(world(&[("a", 10000, &[9003])]), now)
            .is_empty()
    );
    assert!(
        s.on_snapshot(world(&[("a", 10000, &[9004])]), now)
            .is_empty()
    );
    // A request with an old nonce is ignored.
    assert!(s.on_request(ack(&eds, &["a"]), now).is_empty());
    assert_eq!(s.events.stale, 1);
    // The ACK releases the latest state only.
    let latest = only(&s.on_request(ack(&first, &["a"]), now), ENDPOINT).clone();
    let cla = ClusterLoadAssignment::decode(latest.resources[0].value.as_slice()).expect("cla");
    let port = match &cla.endpoints[0].lb_endpoints[0].host_identifier {
        Some(lb_endpoint::HostIdentifier::Endpoint(e)) => match &e.address {
            Some(Address {
                address: Some(address::Address::SocketAddress(sa)),
            }) => sa.port_specifier.clone(),
            _ => None,
        },
        _ => None,
    };
    assert_eq!(port, Some(socket_address::PortSpecifier::PortValue(9004)));
}

#[test]
fn new_service_is_added_clusters_first_and_removed_listeners_first() {
    let mut s = Stream::new();
    let now = Instant::now();
    started(&mut s, world(&[("a", 10000, &[9001])]), now);
    // Add b: CDS with a and b first, no listener yet.
    let both = world(&[("a", 10000, &[9001]), ("b", 10001, &[9002])]);
    let cds = only(&s.on_snapshot(both, now), CLUSTER).clone();
    assert_eq!(names(&cds), ["a", "b"]);
    // Envoy subscribes to b's endpoints (re-request with the ACKed EDS nonce's names).
    let eds_nonce = s.types[ENDPOINT].last_nonce.clone().expect("sent before");
    let eds = only(
        &s.on_request(req(ENDPOINT, &["a", "b"], &eds_nonce), now),
        ENDPOINT,
    )
    .clone();
    assert_eq!(names(&eds), ["a", "b"]);
    assert!(s.on_request(ack(&eds, &["a", "b"]), now).is_empty());
    let lds = only(&s.on_request(ack(&cds, &[]), now), LISTENER).clone();
    assert_eq!(names(&lds), ["a", "b"]);
    assert!(s.on_request(ack(&lds, &[]), now).is_empty());
    assert_eq!(s.phase(), Phase::Idle);

    // Remove a: the listener goes first, the cluster after its ACK.
    let out = s.on_snapshot(world(&[("b", 10001, &[9002])]), now);
    let lds = only(&out, LISTENER).clone();
    assert_eq!(names(&lds), ["b"]);
    let cds = only(&s.on_request(ack(&lds, &[]), now), CLUSTER).clone();
    assert_eq!(names(&cds), ["b"]);
    assert!(s.on_request(ack(&cds, &[]), now).is_empty());
    assert_eq!(s.phase(), Phase::Idle);
}

#[test]
fn unknown_cluster_names_get_an_empty_assignment() {
    let mut s = Stream::new();
    let now = Instant::now();
    s.on_snapshot(world(&[("a", 10000, &[9001])]), now);
    let out = s.on_request(req(ENDPOINT, &["a", "gone"], ""), now);
    let eds = only(&out, ENDPOINT);
    assert_eq!(names(eds), ["a", "gone"]);
    let cla = ClusterLoadAssignment::decode(eds.resources[1].value.as_slice()).expect("cla");
    assert!(cla.endpoints.is_empty());
}

#[test]
fn an_unacked_phase_moves_on_after_the_timeout() {
    let mut s = Stream::new();
    let now = Instant::now();
    s.on_snapshot(world(&[("a", 10000, &[9001])]), now);
    only(&s.on_request(req(CLUSTER, &[], ""), now), CLUSTER);
    assert!(s.on_request(req(LISTENER, &[], ""), now).is_empty());
    assert!(s.on_tick(now + Duration::from_secs(1)).is_empty());
    let out = s.on_tick(now + PHASE_TIMEOUT);
    only(&out, LISTENER);
    assert_eq!(s.events.phase_timeouts, 1);
}
