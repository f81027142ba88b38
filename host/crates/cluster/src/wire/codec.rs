//! Bounded binary primitives: LEB128 varints and length-prefixed strings.
//!
//! Every read checks the remaining input before it allocates, so a hostile length
//! prefix costs nothing: the decoder fails with [`WireError`] instead.

use thiserror::Error;

/// Why an input was refused. Every variant is a drop reason counted by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("input ended early")]
    Truncated,
    #[error("varint too long")]
    Varint,
    #[error("length {0} exceeds the limit")]
    TooLong(u64),
    #[error("invalid UTF-8 string")]
    Utf8,
    #[error("unknown tag {0}")]
    Tag(u8),
    #[error("unsupported wire version {0}")]
    Version(u8),
    #[error("invalid value")]
    Invalid,
    #[error("decompression failed")]
    Decompress,
}

/// Longest string we accept (names, images, IPs): far beyond any real record.
pub const MAX_STR: usize = 4096;

#[derive(Default, Debug)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32_le(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64_le(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Zig-zag signed varint.
    pub fn svarint(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// A cursor over untrusted input.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        let (&b, rest) = self.buf.split_first().ok_or(WireError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u32_le(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64_le(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn varint(&mut self) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(WireError::Varint);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Varint)
    }

    pub fn varint_u32(&mut self) -> Result<u32, WireError> {
        u32::try_from(self.varint()?).map_err(|_| WireError::Invalid)
    }

    pub fn svarint(&mut self) -> Result<i64, WireError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count of items that each take at least `min_item` bytes: refused when the input
    /// cannot possibly hold that many, so callers may pre-allocate `count` slots.
    pub fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.varint()?;
        if n.saturating_mul(min_item.max(1) as u64) > self.remaining() as u64 {
            return Err(WireError::TooLong(n));
        }
        Ok(n as usize)
    }

    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], WireError> {
        let n = self.varint()?;
        if n > max as u64 {
            return Err(WireError::TooLong(n));
        }
        self.take(n as usize)
    }

    pub fn str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(MAX_STR)?).map_err(|_| WireError::Utf8)
    }

    pub fn string(&mut self) -> Result<String, WireError> {
        self.str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::new();
            w.varint(v);
            assert_eq!(Reader::new(&w.buf).varint(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut w = Writer::new();
            w.svarint(v);
            assert_eq!(Reader::new(&w.buf).svarint(), Ok(v));
        }
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::Varint));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(WireError::Truncated));
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let mut w = Writer::new();
        w.varint(1 << 40);
        assert!(Reader::new(&w.buf).bytes(usize::MAX).is_err());
        assert!(Reader::new(&w.buf).count(1).is_err());
        let mut w = Writer::new();
        w.str("héllo");
        assert_eq!(Reader::new(&w.buf).str(), Ok("héllo"));
        assert_eq!(Reader::new(&[2, 0xff, 0xfe]).str(), Err(WireError::Utf8));
    }
}
