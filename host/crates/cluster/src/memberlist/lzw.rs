//! LZW as Go's `compress/lzw` writes it with `LSB` order and literal width 8 (what
//! memberlist compresses packets and streams with): codes of 9 to 12 bits, least
//! significant bit first, clear code 256 first, end code 257 last, the table reset
//! (with a clear code) when it reaches 4095 entries.
//!
//! Decoding stops with an error past `max_out` bytes: a few hundred bytes of LZW can
//! claim megabytes.

use std::collections::HashMap;

const CLEAR: u16 = 256;
const EOF: u16 = 257;
const MAX_WIDTH: u32 = 12;
const MAX_CODE: u16 = (1 << MAX_WIDTH) - 1;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LzwError {
    #[error("invalid LZW code {0}")]
    InvalidCode(u16),
    #[error("LZW data ends without its end code")]
    Truncated,
    #[error("LZW data expands beyond {0} bytes")]
    TooLarge(usize),
}

/// Decompresses `data`, refusing to produce more than `max_out` bytes.
pub fn decompress(data: &[u8], max_out: usize) -> Result<Vec<u8>, LzwError> {
    let mut prefix = vec![0u16; 1 << MAX_WIDTH];
    let mut suffix = vec![0u8; 1 << MAX_WIDTH];
    let mut out = Vec::new();
    let mut width = 9u32;
    let mut hi = EOF;
    let mut overflow = 1u16 << width;
    let mut last: Option<u16> = None;
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut input = data.iter();
    let mut scratch: Vec<u8> = Vec::with_capacity(1 << MAX_WIDTH);
    loop {
        while nbits < width {
            let Some(b) = input.next() else {
                return Err(LzwError::Truncated);
            };
            bits |= u32::from(*b) << nbits;
            nbits += 8;
        }
        let code = (bits & ((1 << width) - 1)) as u16;
        bits >>= width;
        nbits -= width;
        if code < CLEAR {
            out.push(code as u8);
            if let Some(l) = last {
                suffix[usize::from(hi)] = code as u8;
                prefix[usize::from(hi)] = l;
            }
        } else if code == CLEAR {
            width = 9;
            hi = EOF;
            overflow = 1 << width;
            last = None;
            continue;
        } else if code == EOF {
            return Ok(out);
        } else if code <= hi {
            // Walk the chain backwards into `scratch`, then append it reversed.
            scratch.clear();
            let mut c = code;
            if code == hi {
                // The KwKwK case: last's string plus its own first byte.
                let Some(l) = last else {
                    return Err(LzwError::InvalidCode(code));
                };
                let mut f = l;
                while f >= CLEAR {
                    f = prefix[usize::from(f)];
                }
                scratch.push(f as u8);
                c = l;
            }
            while c >= CLEAR {
                if scratch.len() > usize::from(MAX_CODE) + 1 {
                    return Err(LzwError::InvalidCode(code));
                }
                scratch.push(suffix[usize::from(c)]);
                c = prefix[usize::from(c)];
            }
            scratch.push(c as u8);
            out.extend(scratch.iter().rev());
            if let Some(l) = last {
                suffix[usize::from(hi)] = c as u8;
                prefix[usize::from(hi)] = l;
            }
        } else {
            return Err(LzwError::InvalidCode(code));
        }
        if out.len() > max_out {
            return Err(LzwError::TooLarge(max_out));
        }
        last = Some(code);
        hi += 1;
        if hi >= overflow {
            if width == MAX_WIDTH {
                last = None;
                hi -= 1;
            } else {
                width += 1;
                overflow = 1 << width;
            }
        }
    }
}

struct BitWriter {
    out: Vec<u8>,
    bits: u32,
    nbits: u32,
}

impl BitWriter {
    fn write(&mut self, code: u16, width: u32) {
        self.bits |= u32::from(code) << self.nbits;
        self.nbits += width;
        while self.nbits >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits -= 8;
        }
    }
}

/// Compresses `data` exactly as Go's `lzw.NewWriter(w, lzw.LSB, 8)` does.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        out: Vec::with_capacity(data.len() / 2 + 8),
        bits: 0,
        nbits: 0,
    };
    let mut width = 9u32;
    let mut hi = EOF;
    let mut overflow = 1u16 << width;
    let mut table: HashMap<(u16, u8), u16> = HashMap::new();
    w.write(CLEAR, width);
    let Some((&first, rest)) = data.split_first() else {
        w.write(EOF, width);
        if w.nbits > 0 {
            w.out.push(w.bits as u8);
        }
        return w.out;
    };
    let mut code = u16::from(first);
    // Go's incHi: true when the table was reset (a clear code was written).
    let inc_hi = |hi: &mut u16,
                  width: &mut u32,
                  overflow: &mut u16,
                  table: &mut HashMap<(u16, u8), u16>,
                  w: &mut BitWriter| {
        *hi += 1;
        if *hi == *overflow {
            *width += 1;
            *overflow <<= 1;
        }
        if *hi == MAX_CODE {
            w.write(CLEAR, *width);
            *width = 9;
            *hi = EOF;
            *overflow = 1 << 9;
            table.clear();
            return true;
        }
        false
    };
    for &x in rest {
        if let Some(&c) = table.get(&(code, x)) {
            code = c;
            continue;
        }
        w.write(code, width);
        let prev = code;
        code = u16::from(x);
        if !inc_hi(&mut hi, &mut width, &mut overflow, &mut table, &mut w) {
            table.insert((prev, x), hi);
        }
    }
    w.write(code, width);
    inc_hi(&mut hi, &mut width, &mut overflow, &mut table, &mut w);
    w.write(EOF, width);
    if w.nbits > 0 {
        w.out.push(w.bits as u8);
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_example_round_trips() {
        // Go's streams and large packets are LZW: the interop tests with the Go binary
        // decode them; here, our encoder against our decoder.
        let ours = compress(b"TOBEORNOTTOBEORTOBEORNOT");
        assert_eq!(ours[0], 0x00, "clear code 256 first: low 8 bits zero");
        assert_eq!(
            decompress(&ours, 1 << 20).as_deref(),
            Ok(&b"TOBEORNOTTOBEORTOBEORNOT"[..])
        );
    }

    #[test]
    fn round_trips_past_table_resets_and_width_changes() {
        let mut x = 7u32;
        let data: Vec<u8> = (0..200_000)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 16) as u8
                } else {
                    b"abcab"[i % 5]
                }
            })
            .collect();
        let c = compress(&data);
        assert!(c.len() < data.len());
        assert_eq!(decompress(&c, data.len()).expect("round trip"), data);
        assert_eq!(decompress(&compress(b""), 10).expect("empty"), b"");
        assert_eq!(
            decompress(&compress(b"aaaaaaaaaaaaaaaaaaaa"), 100).expect("kwkwk"),
            b"aaaaaaaaaaaaaaaaaaaa"
        );
    }

    #[test]
    fn bombs_and_garbage_are_errors() {
        let bomb = compress(&vec![0u8; 1 << 20]);
        assert_eq!(decompress(&bomb, 4096), Err(LzwError::TooLarge(4096)));
        assert_eq!(decompress(&[], 10), Err(LzwError::Truncated));
        let mut x = 99u32;
        for len in 0..3000usize {
            let buf: Vec<u8> = (0..len % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = decompress(&buf, 1 << 16);
        }
    }
}
