//! Untrusted gossip input, every way it enters: the envelope (plaintext and encrypted),
//! the datagram and stream decoders, and the sans-IO core fed the bytes as a datagram,
//! a stream request and a stream reply; the memberlist wire's decoders and core likewise.
//! Anything may be refused; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_catalog::{Catalog, Fingerprint, Mono, Now, Record, Service, Timestamp};
use sidecar_cluster::crypto::Keyring;
use sidecar_cluster::swim::{CatalogPort, Swim, SwimConfig};
use sidecar_cluster::wire::frame::{Channel, Framer};
use sidecar_cluster::wire::{self, Stream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Port(Catalog, Now);

impl CatalogPort for Port {
    fn merge(&mut self, announcer: &str, records: Vec<Service>) -> Vec<Record> {
        self.0.merge_all(announcer, records, self.1).stored
    }
    fn fingerprints(&self) -> Vec<(String, Fingerprint)> {
        self.0.fingerprints()
    }
    fn host_records(&self, host: &str) -> Vec<Record> {
        self.0.host_records(host)
    }
}

fuzz_target!(|data: &[u8]| {
    let plain = Framer::new("fuzz", None);
    let _ = plain.open(Channel::Datagram, data);
    if let Ok(h) = plain.open_header(data, 1 << 20) {
        let _ = plain.open_body(&h, data);
    }
    if let Ok(ring) = Keyring::new(&[[7; 32]]) {
        let sealed = Framer::new("fuzz", Some(ring));
        let _ = sealed.open(Channel::Stream, data);
        let _ = sealed.open_header(data, 1 << 20);
    }
    let _ = wire::decode_packet::<Arc<str>, SocketAddr>(data);
    let _ = wire::decode_packet::<u32, u32>(data);
    let _ = Stream::<Arc<str>, SocketAddr>::decode(data);

    let now = Now::new(Timestamp::from_unix_secs(1_767_225_600), Mono(Duration::from_secs(5)));
    let mut port = Port(Catalog::new("me", "fuzz"), now);
    let from: SocketAddr = ([127, 0, 0, 2], 7946).into();
    let mut core: Swim<Arc<str>, SocketAddr> = Swim::new(
        SwimConfig::default(),
        Arc::from("me"),
        ([127, 0, 0, 1], 7946).into(),
        1,
        0,
        1,
    );
    let _ = core.handle_datagram(from, data, 1_000, &mut port);
    let _ = core.handle_stream(from, data, 2_000, &mut port);
    core.join(vec![from], 3_000, &port);
    let _ = core.handle_stream_reply(1, Some(data), 4_000, &mut port);
    core.tick(10_000_000, &port);
    while core.poll_output().is_some() {}

    // The memberlist wire: its datagram and stream decoders, and its core.
    use sidecar_cluster::memberlist::{Memberlist, MlConfig, codec as ml};
    let _ = ml::decode_packet(data);
    let _ = ml::parse_stream(data, 1 << 20);
    let _ = sidecar_cluster::memberlist::lzw::decompress(data, 1 << 16);
    let mut m = Memberlist::new(
        MlConfig::default(),
        "me",
        ([127, 0, 0, 1], 7946).into(),
        Vec::new(),
        1,
        1,
        0,
    );
    let _ = m.handle_packet(from, data, 1_000);
    if let Ok(Some(ml::StreamMsg::PushPull(pp))) = ml::parse_stream(data, 1 << 20) {
        m.merge_remote(pp.nodes, from, 2_000);
    }
    m.tick(10_000_000);
    while m.poll_output().is_some() {}
});
