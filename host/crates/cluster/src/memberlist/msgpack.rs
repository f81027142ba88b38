//! The msgpack subset HashiCorp memberlist speaks (go-msgpack 0.5.5, `MsgpackHandle{}`):
//! structs are maps keyed by Go field names, strings and `[]byte` are written as "raw"
//! (the pre-2013 str family, `0xa0`/`0xda`/`0xdb`), integers in their smallest form.
//!
//! The decoder reads any msgpack value (bin and str8 too, floats skipped as values) with
//! bounds: nesting depth, and every length checked against the bytes actually present,
//! so hostile input cannot make it allocate more than it was sent.

use std::fmt;

/// Deepest nesting accepted (memberlist's messages are flat maps).
const MAX_DEPTH: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    /// Every integer, signed or not (memberlist never sends negative numbers; a
    /// negative one decodes to an error where a count or a number is expected).
    Int(i128),
    Float(f64),
    /// str, raw or bin.
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a value: on a stream, read more.
    Incomplete,
    Invalid(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("truncated msgpack value"),
            DecodeError::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DecodeError {}

fn invalid(s: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(s.into())
}

/// Decodes one value from the front of `buf`; returns it and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        if end > self.buf.len() {
            return Err(DecodeError::Incomplete);
        }
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn bytes(&mut self, n: usize) -> Result<Value, DecodeError> {
        Ok(Value::Bytes(self.take(n)?.to_vec()))
    }

    /// `n` items follow, each at least one byte: more than the bytes left is a lie
    /// (or a stream to read on); never allocate for it up front.
    fn count(&self, n: usize) -> Result<usize, DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::Incomplete);
        }
        Ok(n)
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let n = self.count(n)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(v))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let n = self.count(n.saturating_mul(2))? / 2;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let val = self.value(depth + 1)?;
            v.push((k, val));
        }
        Ok(Value::Map(v))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(invalid("msgpack nested too deeply"));
        }
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Value::Int(i128::from(b)),
            0x80..=0x8f => return self.map(usize::from(b & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(b & 0x0f), depth),
            0xa0..=0xbf => return self.bytes(usize::from(b & 0x1f)),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                return self.bytes(n);
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                return self.bytes(n);
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                return self.bytes(n);
            }
            0xca => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.be(8)?)),
            0xcc => Value::Int(i128::from(self.be(1)?)),
            0xcd => Value::Int(i128::from(self.be(2)?)),
            0xce => Value::Int(i128::from(self.be(4)?)),
            0xcf => Value::Int(i128::from(self.be(8)?)),
            0xd0 => Value::Int(i128::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Int(i128::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Int(i128::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Int(i128::from(self.be(8)? as i64)),
            0xdc => {
                let n = self.be(2)? as usize;
                return self.array(n, depth);
            }
            0xdd => {
                let n = self.be(4)? as usize;
                return self.array(n, depth);
            }
            0xde => {
                let n = self.be(2)? as usize;
                return self.map(n, depth);
            }
            0xdf => {
                let n = self.be(4)? as usize;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Int(i128::from(b as i8)),
            other => return Err(invalid(format!("unsupported msgpack type 0x{other:02x}"))),
        })
    }
}

impl Value {
    /// The value under `key` in a map (Go matches field names exactly, then
    /// case-insensitively; so do we). `None` when absent or not a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Map(entries) = self else {
            return None;
        };
        fn key_of(k: &Value) -> Option<&[u8]> {
            match k {
                Value::Bytes(b) => Some(b.as_slice()),
                _ => None,
            }
        }
        entries
            .iter()
            .find(|(k, _)| key_of(k) == Some(key.as_bytes()))
            .or_else(|| {
                entries.iter().find(|(k, _)| {
                    key_of(k).is_some_and(|b| b.eq_ignore_ascii_case(key.as_bytes()))
                })
            })
            .map(|(_, v)| v)
    }

    /// An unsigned field: absent or nil is 0 (Go's zero value).
    pub fn uint(&self, key: &str, max: u64) -> Result<u64, DecodeError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(0),
            Some(Value::Int(i)) if *i >= 0 && *i <= i128::from(max) => Ok(*i as u64),
            Some(other) => Err(invalid(format!(
                "{key}: {other:?} is not a number up to {max}"
            ))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, DecodeError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(invalid(format!("{key}: {other:?} is not a boolean"))),
        }
    }

    /// A `[]byte` field (also accepts an array of small integers).
    pub fn bytes(&self, key: &str) -> Result<Vec<u8>, DecodeError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(Vec::new()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) if (0..=255).contains(i) => Ok(*i as u8),
                    other => Err(invalid(format!("{key}: {other:?} is not a byte"))),
                })
                .collect(),
            Some(other) => Err(invalid(format!("{key}: {other:?} is not bytes"))),
        }
    }

    /// A string field, at most `max` bytes of UTF-8.
    pub fn string(&self, key: &str, max: usize) -> Result<String, DecodeError> {
        let b = match self.get(key) {
            None | Some(Value::Nil) => return Ok(String::new()),
            Some(Value::Bytes(b)) => b,
            Some(other) => return Err(invalid(format!("{key}: {other:?} is not a string"))),
        };
        if b.len() > max {
            return Err(invalid(format!("{key}: {} bytes (at most {max})", b.len())));
        }
        String::from_utf8(b.clone()).map_err(|_| invalid(format!("{key}: not UTF-8")))
    }
}

/// Writes msgpack the way go-msgpack 0.5.5 does.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn map(&mut self, n: usize) -> &mut Self {
        if n < 16 {
            self.buf.push(0x80 | n as u8);
        } else {
            self.buf.push(0xde);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len();
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n <= usize::from(u16::MAX) {
            self.buf.push(0xda);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(0xdb);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes())
    }

    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v < 128 {
            self.buf.push(v as u8);
        } else if v <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= u64::from(u16::MAX) {
            self.buf.push(0xcd);
            self.buf.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= u64::from(u32::MAX) {
            self.buf.push(0xce);
            self.buf.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.buf.push(0xcf);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
        self
    }

    /// A `[]byte` field: nil when empty, as Go writes a nil slice.
    pub fn bytes_or_nil(&mut self, b: &[u8]) -> &mut Self {
        if b.is_empty() {
            self.buf.push(0xc0);
            self
        } else {
            self.raw(b)
        }
    }

    /// `key: value` helpers for struct fields.
    pub fn field_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.str(k).str(v)
    }
    pub fn field_uint(&mut self, k: &str, v: u64) -> &mut Self {
        self.str(k).uint(v)
    }
    pub fn field_bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.str(k).bytes_or_nil(v)
    }
    pub fn field_bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.str(k).bool(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_struct_as_go_writes_it() {
        let mut w = Writer::new();
        w.map(3)
            .field_uint("SeqNo", 70_000)
            .field_str("Node", "n1")
            .field_bytes("Payload", &[]);
        // fixmap(3) "SeqNo" uint32 70000 "Node" "n1" "Payload" nil
        assert_eq!(w.buf[0], 0x83);
        assert_eq!(&w.buf[1..7], b"\xa5SeqNo");
        assert_eq!(&w.buf[7..12], &[0xce, 0, 1, 0x11, 0x70]);
        let (v, n) = decode(&w.buf).expect("decodes");
        assert_eq!(n, w.buf.len());
        assert_eq!(v.uint("SeqNo", u64::from(u32::MAX)), Ok(70_000));
        assert_eq!(
            v.string("node", 10).as_deref(),
            Ok("n1"),
            "case-insensitive"
        );
        assert_eq!(v.bytes("Payload"), Ok(vec![]));
        assert_eq!(v.uint("Missing", 1), Ok(0));
    }

    #[test]
    fn accepts_every_int_and_string_family() {
        for (bytes, want) in [
            (&[0xd0, 0xff][..], -1i128),
            (&[0xcd, 1, 0], 256),
            (&[0xd3, 0, 0, 0, 0, 0, 0, 0, 5], 5),
            (&[0xe0], -32),
        ] {
            assert_eq!(decode(bytes).expect("int").0, Value::Int(want));
        }
        assert_eq!(
            decode(&[0xc4, 2, 1, 2]).expect("bin").0,
            Value::Bytes(vec![1, 2])
        );
        assert_eq!(
            decode(&[0xd9, 1, b'x']).expect("str8").0,
            Value::Bytes(vec![b'x'])
        );
    }

    #[test]
    fn truncation_is_incomplete_and_garbage_is_an_error_never_a_panic() {
        assert_eq!(decode(&[0xda, 0, 10, 1]), Err(DecodeError::Incomplete));
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Incomplete)
        );
        assert!(matches!(decode(&[0xc1]), Err(DecodeError::Invalid(_))));
        let deep = vec![0x91u8; 64];
        assert!(decode(&deep).is_err());
        // Pseudo-random garbage: any result but a panic.
        let mut x = 0x1234_5678u32;
        for len in 0..2000 {
            let buf: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = decode(&buf);
        }
    }
}
