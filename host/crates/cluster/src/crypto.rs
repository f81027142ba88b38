//! AES-256-GCM keyring: one primary key seals, every installed key may open, so keys
//! rotate without downtime (install everywhere -> make primary everywhere -> remove).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("encryption key #{index} is not base64")]
    Base64 { index: usize },
    #[error("encryption key #{index} is {len} bytes; AES-256 needs 32")]
    Length { index: usize, len: usize },
    #[error("no encryption keys given")]
    Empty,
}

/// The installed keys; the first is the primary.
#[derive(Clone)]
pub struct Keyring {
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.ciphers.len())
    }
}

impl Keyring {
    pub fn new(keys: &[[u8; KEY_LEN]]) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keyring {
            ciphers: keys.iter().map(|k| Aes256Gcm::new(&(*k).into())).collect(),
        })
    }

    /// Keys as base64 strings (standard alphabet, padding optional), primary first.
    pub fn from_base64(keys: &[String]) -> Result<Self, KeyError> {
        use base64::Engine;
        let mut raw = Vec::with_capacity(keys.len());
        for (index, k) in keys.iter().enumerate() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(k.trim()))
                .map_err(|_| KeyError::Base64 { index })?;
            let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
                index,
                len: bytes.len(),
            })?;
            raw.push(key);
        }
        Self::new(&raw)
    }

    /// A fresh key from the operating system's CSPRNG, as base64 (what
    /// `SIDECAR_ENCRYPTION_KEYS` takes; `sidecar keygen` prints it).
    pub fn generate_base64() -> Result<String, rand::rand_core::OsError> {
        use base64::Engine;
        use rand::TryRngCore;
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.try_fill_bytes(&mut key)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(key))
    }

    pub fn len(&self) -> usize {
        self.ciphers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ciphers.is_empty()
    }

    /// `nonce || ciphertext || tag`, with `aad` authenticated but not sent.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let nonce: [u8; NONCE_LEN] = rand::random();
        out.extend_from_slice(&nonce);
        // Encryption with a valid key and in-memory buffers cannot fail.
        if let Ok(ct) = self.ciphers[0].encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        ) {
            out.extend_from_slice(&ct);
        }
    }

    /// Tries every installed key. `None` when none authenticates the input.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.ciphers.iter().find_map(|c| {
            c.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
                .ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_opens_with_any_installed_key() {
        let old = Keyring::new(&[[1; 32]]).expect("ring");
        let both = Keyring::new(&[[2; 32], [1; 32]]).expect("ring");
        let new = Keyring::new(&[[2; 32]]).expect("ring");
        let mut sealed = Vec::new();
        old.seal(b"aad", b"hello", &mut sealed);
        assert_eq!(both.open(b"aad", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(new.open(b"aad", &sealed), None);
        assert_eq!(old.open(b"other", &sealed), None, "aad is bound");
        let mut sealed = Vec::new();
        both.seal(b"aad", b"x", &mut sealed);
        assert!(new.open(b"aad", &sealed).is_some(), "the primary seals");
    }

    #[test]
    fn generated_keys_are_valid_and_fresh() {
        let a = Keyring::generate_base64().expect("os rng");
        let b = Keyring::generate_base64().expect("os rng");
        assert_ne!(a, b);
        assert_eq!(Keyring::from_base64(&[a]).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn base64_keys_are_checked() {
        let k = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        assert_eq!(Keyring::from_base64(&[k.into()]).map(|r| r.len()), Ok(1));
        assert_eq!(
            Keyring::from_base64(&["AQID".into()]).map(|r| r.len()),
            Err(KeyError::Length { index: 0, len: 3 })
        );
        assert!(matches!(
            Keyring::from_base64(&[k.into(), "!!".into()]),
            Err(KeyError::Base64 { index: 1 })
        ));
    }
}
