//! The outer envelope of every datagram and stream message: cluster label and, when a
//! keyring is configured, AES-256-GCM with the cluster name bound as associated data.
//!
//! ```text
//! plaintext  = 0x00 cluster-id(8, xxh3 of the name) payload          9 B overhead
//! encrypted  = 0x01 nonce(12) ciphertext tag(16)                    29 B overhead
//! ```
//!
//! A node of another cluster fails the label check (plaintext) or authentication
//! (encrypted: the name is part of the associated data); a node without the key cannot
//! produce anything we open; a plaintext node cannot talk to an encrypted cluster.
//!
//! A stream message is a small header, then the body, so a receiver authenticates (or,
//! in plaintext, checks the cluster id of) a few dozen bytes before it allocates the
//! body; both are enveloped as above, on channels of their own:
//!
//! ```text
//! message = header-len(1, ≤ 64) envelope('h', version(1)=1 body-len(u32 LE) id(16))
//!           envelope('s', id(16) payload)                 body-len = that envelope's length
//! refusal = one byte ≥ 0xF0 instead of header-len: "I refused you, because ..."
//! ```
//!
//! The random `id` in both ties a header to its body: a captured header cannot announce
//! another body. The refusal byte is not authenticated; it tells the peer only that it
//! was refused (and why), which is what a node that cannot join needs to say so.

use crate::crypto::{Keyring, NONCE_LEN, TAG_LEN};

const PLAIN: u8 = 0;
const SEALED: u8 = 1;

/// Which channel a frame travels on (bound into the associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Datagram = b'd' as isize,
    Stream = b's' as isize,
    /// The header in front of a stream body.
    Header = b'h' as isize,
}

/// Longest sealed stream header (its length byte excluded).
pub const MAX_HEADER: usize = 64;
/// Length of the random id binding a stream header to its body.
pub const STREAM_ID_LEN: usize = 16;
const HEADER_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + STREAM_ID_LEN;
/// Refusal codes start here (above any header length).
const REFUSAL_BASE: u8 = 0xF0;

/// An authenticated stream header: how long the body is, and the id it must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    pub body_len: usize,
    id: [u8; STREAM_ID_LEN],
}

/// The first byte of a stream message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lead {
    /// A header of this many bytes follows.
    Header(usize),
    /// The peer refused our message and closed.
    Refused(Refusal),
    Malformed,
}

impl Lead {
    pub fn parse(b: u8) -> Lead {
        match b {
            0 => Lead::Malformed,
            n if usize::from(n) <= MAX_HEADER => Lead::Header(usize::from(n)),
            c => Refusal::from_code(c).map_or(Lead::Malformed, Lead::Refused),
        }
    }
}

/// Why a frame was dropped before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Empty or unknown envelope.
    Malformed,
    /// Plaintext from another cluster.
    ForeignCluster,
    /// Plaintext while we require encryption.
    Unencrypted,
    /// Encrypted while we have no keys.
    UnexpectedEncryption,
    /// No installed key authenticates it (wrong key, other cluster, or tampering).
    Unauthenticated,
    /// A stream body longer than we accept (`SIDECAR_GOSSIP_MAX_STREAM`).
    TooLarge,
    /// A stream connection over our limit (`SIDECAR_GOSSIP_MAX_CONNECTIONS`).
    ConnectionLimit,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::ForeignCluster => "foreign_cluster",
            Refusal::Unencrypted => "unencrypted",
            Refusal::UnexpectedEncryption => "unexpected_encryption",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::TooLarge => "too_large",
            Refusal::ConnectionLimit => "connection_limit",
        }
    }

    const ALL: [Refusal; 7] = [
        Refusal::Malformed,
        Refusal::ForeignCluster,
        Refusal::Unencrypted,
        Refusal::UnexpectedEncryption,
        Refusal::Unauthenticated,
        Refusal::TooLarge,
        Refusal::ConnectionLimit,
    ];

    /// The byte a refusing node sends on a stream before closing.
    pub fn code(self) -> u8 {
        REFUSAL_BASE + Self::ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    pub fn from_code(c: u8) -> Option<Refusal> {
        Self::ALL
            .get(usize::from(c.checked_sub(REFUSAL_BASE)?))
            .copied()
    }

    /// What a refusal by a peer tells us, for the operator.
    pub fn explain_remote(self) -> &'static str {
        match self {
            Refusal::Malformed => "it could not read our message (another sidecar version?)",
            Refusal::ForeignCluster => {
                "it belongs to another cluster (SIDECAR_CLUSTER_NAME differs)"
            }
            Refusal::Unencrypted => {
                "it requires encryption and we have no key (SIDECAR_ENCRYPTION_KEYS)"
            }
            Refusal::UnexpectedEncryption => "it has no encryption key and we do",
            Refusal::Unauthenticated => {
                "it does not accept our key (wrong SIDECAR_ENCRYPTION_KEYS, or another cluster name)"
            }
            Refusal::TooLarge => {
                "our message is larger than it accepts (SIDECAR_GOSSIP_MAX_STREAM)"
            }
            Refusal::ConnectionLimit => {
                "it is at its connection limit (SIDECAR_GOSSIP_MAX_CONNECTIONS)"
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Framer {
    cluster_id: [u8; 8],
    cluster_name: Vec<u8>,
    keyring: Option<Keyring>,
}

impl Framer {
    pub fn new(cluster_name: &str, keyring: Option<Keyring>) -> Self {
        Framer {
            cluster_id: xxhash_rust::xxh3::xxh3_64(cluster_name.as_bytes()).to_le_bytes(),
            cluster_name: cluster_name.as_bytes().to_vec(),
            keyring,
        }
    }

    pub fn encrypted(&self) -> bool {
        self.keyring.is_some()
    }

    /// Bytes the envelope adds to a payload.
    pub fn overhead(&self) -> usize {
        if self.keyring.is_some() {
            1 + NONCE_LEN + TAG_LEN
        } else {
            1 + 8
        }
    }

    fn aad(&self, ch: Channel) -> Vec<u8> {
        let mut aad = Vec::with_capacity(2 + self.cluster_name.len());
        aad.push(SEALED);
        aad.push(ch as u8);
        aad.extend_from_slice(&self.cluster_name);
        aad
    }

    pub fn seal(&self, ch: Channel, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + self.overhead());
        match &self.keyring {
            Some(ring) => {
                out.push(SEALED);
                ring.seal(&self.aad(ch), payload, &mut out);
            }
            None => {
                out.push(PLAIN);
                out.extend_from_slice(&self.cluster_id);
                out.extend_from_slice(payload);
            }
        }
        out
    }

    pub fn open(&self, ch: Channel, frame: &[u8]) -> Result<Vec<u8>, Refusal> {
        let (&kind, rest) = frame.split_first().ok_or(Refusal::Malformed)?;
        match (kind, &self.keyring) {
            (PLAIN, None) => {
                if rest.len() < 8 {
                    return Err(Refusal::Malformed);
                }
                let (id, payload) = rest.split_at(8);
                if id != self.cluster_id {
                    return Err(Refusal::ForeignCluster);
                }
                Ok(payload.to_vec())
            }
            (PLAIN, Some(_)) => Err(Refusal::Unencrypted),
            (SEALED, None) => Err(Refusal::UnexpectedEncryption),
            (SEALED, Some(ring)) => ring
                .open(&self.aad(ch), rest)
                .ok_or(Refusal::Unauthenticated),
            _ => Err(Refusal::Malformed),
        }
    }

    /// A whole stream message: header-length byte, sealed header, sealed body.
    pub fn seal_stream(&self, payload: &[u8]) -> Vec<u8> {
        let id: [u8; STREAM_ID_LEN] = rand::random();
        let mut inner = Vec::with_capacity(STREAM_ID_LEN + payload.len());
        inner.extend_from_slice(&id);
        inner.extend_from_slice(payload);
        let body = self.seal(Channel::Stream, &inner);
        drop(inner);
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.push(HEADER_VERSION);
        h.extend_from_slice(&(body.len() as u32).to_le_bytes());
        h.extend_from_slice(&id);
        let header = self.seal(Channel::Header, &h);
        let mut out = Vec::with_capacity(1 + header.len() + body.len());
        out.push(header.len() as u8);
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        out
    }

    /// Opens a stream header (the bytes after its length byte): authenticated (or, in
    /// plaintext, of our cluster) and announcing a body of at most `max_body` bytes.
    pub fn open_header(&self, header: &[u8], max_body: usize) -> Result<StreamHeader, Refusal> {
        let h = self.open(Channel::Header, header)?;
        if h.len() != HEADER_LEN || h[0] != HEADER_VERSION {
            return Err(Refusal::Malformed);
        }
        let body_len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        if body_len > max_body {
            return Err(Refusal::TooLarge);
        }
        let mut id = [0u8; STREAM_ID_LEN];
        id.copy_from_slice(&h[5..]);
        Ok(StreamHeader { body_len, id })
    }

    /// Opens the body announced by `h`; it must carry the header's id.
    pub fn open_body(&self, h: &StreamHeader, body: &[u8]) -> Result<Vec<u8>, Refusal> {
        if body.len() != h.body_len {
            return Err(Refusal::Malformed);
        }
        let mut inner = self.open(Channel::Stream, body)?;
        if inner.len() < STREAM_ID_LEN || inner[..STREAM_ID_LEN] != h.id {
            return Err(Refusal::Malformed);
        }
        inner.drain(..STREAM_ID_LEN);
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(k: u8) -> Option<Keyring> {
        Keyring::new(&[[k; 32]]).ok()
    }

    #[test]
    fn clusters_are_isolated_with_and_without_keys() {
        let a = Framer::new("prod", None);
        let b = Framer::new("staging", None);
        let f = a.seal(Channel::Datagram, b"hi");
        assert_eq!(a.open(Channel::Datagram, &f), Ok(b"hi".to_vec()));
        assert_eq!(b.open(Channel::Datagram, &f), Err(Refusal::ForeignCluster));
        assert_eq!(f.len(), 2 + a.overhead());

        let ea = Framer::new("prod", ring(1));
        let eb = Framer::new("staging", ring(1));
        let wrong = Framer::new("prod", ring(2));
        let f = ea.seal(Channel::Datagram, b"hi");
        assert_eq!(f.len(), 2 + ea.overhead());
        assert!(ea.overhead() <= 32);
        assert_eq!(ea.open(Channel::Datagram, &f), Ok(b"hi".to_vec()));
        assert_eq!(
            eb.open(Channel::Datagram, &f),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            wrong.open(Channel::Datagram, &f),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(ea.open(Channel::Stream, &f), Err(Refusal::Unauthenticated));
        assert_eq!(
            a.open(Channel::Datagram, &f),
            Err(Refusal::UnexpectedEncryption)
        );
        assert_eq!(
            ea.open(Channel::Datagram, &a.seal(Channel::Datagram, b"x")),
            Err(Refusal::Unencrypted)
        );
        let mut tampered = f.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            ea.open(Channel::Datagram, &tampered),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(ea.open(Channel::Datagram, &[]), Err(Refusal::Malformed));
        assert_eq!(
            ea.open(Channel::Datagram, &[1, 2]),
            Err(Refusal::Unauthenticated)
        );
    }

    /// Splits a sealed stream message into (header, body) as a reader would.
    fn split(msg: &[u8]) -> (&[u8], &[u8]) {
        let Lead::Header(n) = Lead::parse(msg[0]) else {
            panic!("a header length");
        };
        (&msg[1..1 + n], &msg[1 + n..])
    }

    #[test]
    fn stream_headers_are_small_and_opened_before_the_body() {
        for f in [Framer::new("prod", None), Framer::new("prod", ring(1))] {
            let payload = vec![7u8; 10_000];
            let msg = f.seal_stream(&payload);
            let (header, body) = split(&msg);
            assert!(header.len() <= MAX_HEADER, "{}", header.len());
            let h = f.open_header(header, 1 << 20).expect("header");
            assert_eq!(h.body_len, body.len());
            assert_eq!(f.open_body(&h, body), Ok(payload.clone()));
            assert_eq!(
                f.open_header(header, body.len() - 1),
                Err(Refusal::TooLarge)
            );
        }
    }

    #[test]
    fn stream_headers_are_authenticated() {
        let e = Framer::new("prod", ring(1));
        let msg = e.seal_stream(b"hello");
        let (header, _) = split(&msg);
        let wrong = Framer::new("prod", ring(2));
        assert_eq!(
            wrong.open_header(header, 1 << 20),
            Err(Refusal::Unauthenticated)
        );
        let plain = Framer::new("prod", None);
        assert_eq!(
            plain.open_header(header, 1 << 20),
            Err(Refusal::UnexpectedEncryption)
        );
        let foreign = Framer::new("staging", None);
        let pm = plain.seal_stream(b"x");
        let (ph, _) = split(&pm);
        assert_eq!(
            foreign.open_header(ph, 1 << 20),
            Err(Refusal::ForeignCluster)
        );
        assert_eq!(e.open_header(ph, 1 << 20), Err(Refusal::Unencrypted));
        // A forged length in a sealed header fails authentication.
        let mut forged = header.to_vec();
        forged[1 + NONCE_LEN + 2] ^= 0x40;
        assert_eq!(
            e.open_header(&forged, 1 << 20),
            Err(Refusal::Unauthenticated)
        );
        // A body sealed on the header channel (or vice versa) does not open.
        assert!(
            e.open_header(&e.seal(Channel::Stream, &[1; 21]), 1 << 20)
                .is_err()
        );
    }

    #[test]
    fn a_header_cannot_be_replayed_onto_another_body() {
        for f in [Framer::new("prod", None), Framer::new("prod", ring(1))] {
            let a = f.seal_stream(b"first message");
            let b = f.seal_stream(b"other message");
            let (ha, _) = split(&a);
            let (_, bb) = split(&b);
            let h = f.open_header(ha, 1 << 20).expect("header");
            assert_eq!(f.open_body(&h, bb), Err(Refusal::Malformed));
        }
    }

    #[test]
    fn refusal_codes_round_trip_and_never_look_like_a_header() {
        for r in Refusal::ALL {
            assert_eq!(Lead::parse(r.code()), Lead::Refused(r));
            assert!(usize::from(r.code()) > MAX_HEADER);
        }
        assert_eq!(Lead::parse(0), Lead::Malformed);
        assert_eq!(Lead::parse(65), Lead::Malformed);
        assert_eq!(Lead::parse(30), Lead::Header(30));
    }
}
