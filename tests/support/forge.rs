//! Forged gossip, built with the daemon's own wire code: what an outsider (no key) or
//! an insider (the cluster key) can send. Used by the adversarial suite and the
//! attack benchmark, always inside a network namespace that has only loopback: forged
//! member entries carry arbitrary addresses and a daemon pings the members it learns.

use sidecar_catalog::Service;
use sidecar_cluster::crypto::Keyring;
use sidecar_cluster::wire::frame::{Channel, Framer};
use sidecar_cluster::wire::{
    self, Item, MemberUpdate, Msg, State, Stream, SyncDigest, SyncRecords, WireRecord,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

pub type Key = Arc<str>;
pub type Update = MemberUpdate<Key, SocketAddr>;

/// Sends what a member named `sender` could send, sealed with `key` (an insider) or in
/// plaintext (`None`: an outsider).
pub struct Forger {
    pub socket: UdpSocket,
    framer: Framer,
    sender: Key,
}

impl Forger {
    pub fn new(cluster: &str, sender: &str, key: Option<&str>) -> std::io::Result<Forger> {
        let keyring = match key {
            Some(k) => Some(
                Keyring::from_base64(&[k.to_string()])
                    .map_err(|e| std::io::Error::other(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Forger {
            socket: UdpSocket::bind("127.0.0.1:0")?,
            framer: Framer::new(cluster, keyring),
            sender: Arc::from(sender),
        })
    }

    /// One datagram carrying `items`.
    pub fn datagram(&self, to: SocketAddr, items: &[Item<Key, SocketAddr>]) -> std::io::Result<()> {
        let mut payload = wire::encode_head::<Key, SocketAddr>(&self.sender, 1, &Msg::Gossip);
        for item in items {
            payload.extend_from_slice(&item.encode());
        }
        let frame = self.framer.seal(Channel::Datagram, &payload);
        self.socket.send_to(&frame, to).map(|_| ())
    }

    /// One datagram carrying one record as announced by `announcer`.
    pub fn record(&self, to: SocketAddr, announcer: &str, service: Service) -> std::io::Result<()> {
        self.datagram(
            to,
            &[Item::Record(WireRecord {
                announcer: announcer.into(),
                service,
            })],
        )
    }

    /// One stream request over a fresh TCP connection; the raw reply bytes, if any
    /// arrive within `wait` (the reply's envelope is not opened).
    pub fn stream(&self, to: SocketAddr, payload: &[u8], wait: Duration) -> std::io::Result<usize> {
        let msg = self.framer.seal_stream(payload);
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_write_timeout(Some(wait))?;
        s.set_read_timeout(Some(wait))?;
        s.write_all(&msg)?;
        let mut reply = Vec::new();
        match s.read_to_end(&mut reply) {
            Ok(_) => Ok(reply.len()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(reply.len()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(reply.len()),
            Err(e) => Err(e),
        }
    }

    /// `n` random and truncated datagrams (every other one claiming to be sealed), from
    /// a xorshift so that no extra crate is needed; `after(i)` runs after datagram `i`.
    pub fn random_datagrams(&self, to: SocketAddr, n: usize, mut after: impl FnMut(usize)) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = vec![0u8; 1400];
        for i in 0..n {
            let len = (x as usize) % buf.len();
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            if i % 2 == 0 && len > 0 {
                buf[0] = 1;
            }
            let _ = self.socket.send_to(&buf[..len], to);
            after(i);
        }
    }

    /// A member claim about ourselves, as a stream request's sender.
    fn me(&self) -> Update {
        MemberUpdate {
            key: self.sender.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            generation: 1,
            inc: 0,
            state: State::Alive,
            from: None,
        }
    }

    /// An anti-entropy request asking for `n` host names (the 1M-wants attack).
    pub fn want_flood(&self, n: usize) -> Vec<u8> {
        Stream::<Key, SocketAddr>::Records(SyncRecords {
            members: None,
            records: Vec::new(),
            want: (0..n).map(|i| format!("h{i}")).collect(),
        })
        .encode()
    }

    /// An anti-entropy request introducing `n` members at arbitrary addresses.
    pub fn member_flood(&self, n: usize) -> Vec<u8> {
        let mut members: Vec<Update> = (0..n)
            .map(|i| MemberUpdate {
                key: Arc::from(format!("fake-{i}")),
                addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946)),
                generation: 1,
                inc: 0,
                state: State::Alive,
                from: None,
            })
            .collect();
        members.push(self.me());
        Stream::<Key, SocketAddr>::Records(SyncRecords {
            members: Some(members),
            records: Vec::new(),
            want: Vec::new(),
        })
        .encode()
    }

    /// An anti-entropy request carrying `n` records announced by ourselves.
    pub fn record_flood(&self, n: usize, template: &Service) -> Vec<u8> {
        let records = (0..n)
            .map(|i| {
                let mut s = template.clone();
                s.id = format!("flood-{i}");
                s.hostname = self.sender.to_string();
                WireRecord {
                    announcer: self.sender.to_string(),
                    service: s,
                }
            })
            .collect();
        Stream::<Key, SocketAddr>::Records(SyncRecords {
            members: Some(vec![self.me()]),
            records,
            want: Vec::new(),
        })
        .encode()
    }

    /// A digest opening an exchange (what a joining node sends first).
    pub fn digest(&self) -> Vec<u8> {
        Stream::<Key, SocketAddr>::Digest(SyncDigest {
            sender: self.me(),
            join: true,
            members_hash: 0,
            bucket_bits: 0,
            buckets: vec![0],
        })
        .encode()
    }
}

/// Opens `n` TCP connections to `to`, each announcing a 64 MiB frame in the old framing
/// (a 4-byte length) and then trickling bytes: pre-authentication memory exhaustion.
pub fn oversized_frames(to: SocketAddr, n: usize, bytes_each: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(3)) else {
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(&(64u32 << 20).to_be_bytes());
        let junk = vec![0x5a_u8; 64 * 1024];
        let mut sent = 0;
        while sent < bytes_each {
            match s.write(&junk) {
                Ok(0) | Err(_) => break,
                Ok(k) => sent += k,
            }
        }
        held.push(s);
    }
    held
}
