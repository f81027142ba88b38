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

use crate::crypto::{Keyring, NONCE_LEN, TAG_LEN};

const PLAIN: u8 = 0;
const SEALED: u8 = 1;

/// Which channel a frame travels on (bound into the associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Datagram = b'd' as isize,
    Stream = b's' as isize,
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
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::ForeignCluster => "foreign_cluster",
            Refusal::Unencrypted => "unencrypted",
            Refusal::UnexpectedEncryption => "unexpected_encryption",
            Refusal::Unauthenticated => "unauthenticated",
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
}
