//! memberlist's messages as the NinesStack fork (2017, used by Sidecar) encodes them:
//! a type byte, then one msgpack map keyed by Go field names. The fork adds
//! `ClusterName` to `alive`, `suspect`, `dead` and the push/pull header.
//!
//! ```text
//! packet   = [12 crc32(4, BE, IEEE, of the rest)] body        (peer speaks protocol >= 5)
//! body     = type(1) msgpack                                   one message
//!          | 7 count(1) len(2, BE)×count part×count            compound
//!          | 9 msgpack{Algo: 0, Buf: lzw(body)}                compressed
//!          | 8 bytes                                           user message (Sidecar: Service JSON)
//! stream   = [9 msgpack{Algo, Buf}] body                       Go always compresses streams
//!          body = 6 header{Nodes, ClusterName, UserStateLen, Join} pushNodeState×Nodes user-state
//!               | 0 ping | 8 {UserMsgLen} bytes
//! ```
//!
//! Every decoder here is bounded: sizes are checked against what was received, LZW
//! output is capped, compound and compression nest at most twice.

use super::lzw;
use super::msgpack::{self, DecodeError, Value, Writer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PING: u8 = 0;
pub const INDIRECT_PING: u8 = 1;
pub const ACK: u8 = 2;
pub const SUSPECT: u8 = 3;
pub const ALIVE: u8 = 4;
pub const DEAD: u8 = 5;
pub const PUSH_PULL: u8 = 6;
pub const COMPOUND: u8 = 7;
pub const USER: u8 = 8;
pub const COMPRESS: u8 = 9;
pub const ENCRYPT: u8 = 10;
pub const NACK: u8 = 11;
pub const HAS_CRC: u8 = 12;

/// Protocol versions we understand (Go's `ProtocolVersionMin`/`Max`) and speak (Go's
/// default, `ProtocolVersion2Compatible`). We answer TCP pings (3), send and answer
/// nacks (4) and add CRCs for peers whose maximum is 5 or more.
pub const PROTOCOL_MIN: u8 = 1;
pub const PROTOCOL_MAX: u8 = 5;
pub const PROTOCOL_CUR: u8 = 2;
/// `[pmin, pmax, pcur, dmin, dmax, dcur]`; Sidecar's delegate versions are all 0.
pub const VSN: [u8; 6] = [PROTOCOL_MIN, PROTOCOL_MAX, PROTOCOL_CUR, 0, 0, 0];

/// Longest node or cluster name accepted.
pub const MAX_NAME: usize = 512;
/// memberlist's `MetaMaxSize`.
pub const MAX_META: usize = 512;
/// Largest decompressed datagram.
pub const MAX_PACKET: usize = 64 * 1024;
/// Most messages one datagram may carry (compounds inside compressed compounds).
const MAX_PARTS: usize = 512;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty message")]
    Empty,
    #[error("bad CRC")]
    Crc,
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error(
        "encrypted memberlist traffic (memberlist encryption is not supported; Sidecar does not use it)"
    )]
    Encrypted,
    #[error("truncated compound message")]
    Truncated,
    #[error("messages nested too deeply or too many in one packet")]
    TooMany,
    #[error("unknown compression algorithm {0}")]
    Algo(u64),
    #[error("LZW: {0}")]
    Lzw(#[from] lzw::LzwError),
    #[error("msgpack: {0}")]
    Msgpack(String),
    #[error("stream message larger than {0} bytes")]
    TooLarge(usize),
}

impl From<DecodeError> for CodecError {
    fn from(e: DecodeError) -> Self {
        CodecError::Msgpack(e.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ping {
    pub seq: u32,
    pub node: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndirectPing {
    pub seq: u32,
    pub target: Vec<u8>,
    pub port: u16,
    pub node: String,
    pub nack: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub inc: u32,
    pub node: String,
    pub cluster: String,
    pub from: String,
}

/// `dead` has the same fields as `suspect`.
pub type Dead = Suspect;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alive {
    pub inc: u32,
    pub node: String,
    pub cluster: String,
    pub addr: Vec<u8>,
    pub port: u16,
    pub meta: Vec<u8>,
    pub vsn: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Ping(Ping),
    IndirectPing(IndirectPing),
    Ack { seq: u32 },
    Nack { seq: u32 },
    Suspect(Suspect),
    Alive(Alive),
    Dead(Dead),
    User(Vec<u8>),
}

fn u32_of(v: &Value, k: &str) -> Result<u32, CodecError> {
    Ok(v.uint(k, u64::from(u32::MAX))? as u32)
}

fn u16_of(v: &Value, k: &str) -> Result<u16, CodecError> {
    Ok(v.uint(k, u64::from(u16::MAX))? as u16)
}

fn body(buf: &[u8]) -> Result<Value, CodecError> {
    Ok(msgpack::decode(buf)?.0)
}

fn suspect_of(v: &Value) -> Result<Suspect, CodecError> {
    Ok(Suspect {
        inc: u32_of(v, "Incarnation")?,
        node: v.string("Node", MAX_NAME)?,
        cluster: v.string("ClusterName", MAX_NAME)?,
        from: v.string("From", MAX_NAME)?,
    })
}

fn alive_of(v: &Value) -> Result<Alive, CodecError> {
    let meta = v.bytes("Meta")?;
    if meta.len() > MAX_META {
        return Err(CodecError::Msgpack(format!("Meta: {} bytes", meta.len())));
    }
    Ok(Alive {
        inc: u32_of(v, "Incarnation")?,
        node: v.string("Node", MAX_NAME)?,
        cluster: v.string("ClusterName", MAX_NAME)?,
        addr: v.bytes("Addr")?,
        port: u16_of(v, "Port")?,
        meta,
        vsn: v.bytes("Vsn")?,
    })
}

/// Decodes one datagram into its messages.
pub fn decode_packet(buf: &[u8]) -> Result<Vec<Message>, CodecError> {
    let mut out = Vec::new();
    let buf = match buf.first() {
        Some(&HAS_CRC) if buf.len() >= 5 => {
            let want = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
            if crc32fast::hash(&buf[5..]) != want {
                return Err(CodecError::Crc);
            }
            &buf[5..]
        }
        _ => buf,
    };
    // Decompressed bytes one datagram may produce in all.
    let mut budget = 2 * MAX_PACKET;
    decode_into(buf, 0, &mut out, &mut budget)?;
    Ok(out)
}

fn decode_into(
    buf: &[u8],
    depth: usize,
    out: &mut Vec<Message>,
    budget: &mut usize,
) -> Result<(), CodecError> {
    if depth > 3 || out.len() >= MAX_PARTS {
        return Err(CodecError::TooMany);
    }
    let (&ty, rest) = buf.split_first().ok_or(CodecError::Empty)?;
    let msg = match ty {
        COMPOUND => {
            for part in compound_parts(rest)? {
                decode_into(part, depth + 1, out, budget)?;
            }
            return Ok(());
        }
        COMPRESS => {
            let inner = decompress_value(&body(rest)?, (*budget).min(MAX_PACKET))?;
            *budget = budget.saturating_sub(inner.len());
            return decode_into(&inner, depth + 1, out, budget);
        }
        ENCRYPT => return Err(CodecError::Encrypted),
        USER => Message::User(rest.to_vec()),
        PING => {
            let v = body(rest)?;
            Message::Ping(Ping {
                seq: u32_of(&v, "SeqNo")?,
                node: v.string("Node", MAX_NAME)?,
            })
        }
        INDIRECT_PING => {
            let v = body(rest)?;
            Message::IndirectPing(IndirectPing {
                seq: u32_of(&v, "SeqNo")?,
                target: v.bytes("Target")?,
                port: u16_of(&v, "Port")?,
                node: v.string("Node", MAX_NAME)?,
                nack: v.bool("Nack")?,
            })
        }
        ACK => Message::Ack {
            seq: u32_of(&body(rest)?, "SeqNo")?,
        },
        NACK => Message::Nack {
            seq: u32_of(&body(rest)?, "SeqNo")?,
        },
        SUSPECT => Message::Suspect(suspect_of(&body(rest)?)?),
        DEAD => Message::Dead(suspect_of(&body(rest)?)?),
        ALIVE => Message::Alive(alive_of(&body(rest)?)?),
        other => return Err(CodecError::UnknownType(other)),
    };
    out.push(msg);
    Ok(())
}

/// Go's `decodeCompoundMessage`, except that a truncated part is an error.
fn compound_parts(buf: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    let (&n, mut rest) = buf.split_first().ok_or(CodecError::Truncated)?;
    let n = usize::from(n);
    if rest.len() < n * 2 {
        return Err(CodecError::Truncated);
    }
    let lens: Vec<usize> = rest[..n * 2]
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    rest = &rest[n * 2..];
    let mut parts = Vec::with_capacity(n);
    for len in lens {
        if rest.len() < len {
            return Err(CodecError::Truncated);
        }
        parts.push(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(parts)
}

fn decompress_value(v: &Value, max: usize) -> Result<Vec<u8>, CodecError> {
    let algo = v.uint("Algo", u64::from(u8::MAX))?;
    if algo != 0 {
        return Err(CodecError::Algo(algo));
    }
    Ok(lzw::decompress(&v.bytes("Buf")?, max)?)
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

fn with_type(ty: u8, w: Writer) -> Vec<u8> {
    let mut out = Vec::with_capacity(w.buf.len() + 1);
    out.push(ty);
    out.extend_from_slice(&w.buf);
    out
}

pub fn encode_ping(p: &Ping) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(2)
        .field_uint("SeqNo", p.seq.into())
        .field_str("Node", &p.node);
    with_type(PING, w)
}

pub fn encode_indirect_ping(p: &IndirectPing) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(5)
        .field_uint("SeqNo", p.seq.into())
        .field_bytes("Target", &p.target)
        .field_uint("Port", p.port.into())
        .field_str("Node", &p.node)
        .field_bool("Nack", p.nack);
    with_type(INDIRECT_PING, w)
}

pub fn encode_ack(seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(2)
        .field_uint("SeqNo", seq.into())
        .field_bytes("Payload", &[]);
    with_type(ACK, w)
}

pub fn encode_nack(seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(1).field_uint("SeqNo", seq.into());
    with_type(NACK, w)
}

fn encode_suspect_like(ty: u8, s: &Suspect) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(4)
        .field_uint("Incarnation", s.inc.into())
        .field_str("Node", &s.node)
        .field_str("ClusterName", &s.cluster)
        .field_str("From", &s.from);
    with_type(ty, w)
}

pub fn encode_suspect(s: &Suspect) -> Vec<u8> {
    encode_suspect_like(SUSPECT, s)
}

pub fn encode_dead(d: &Dead) -> Vec<u8> {
    encode_suspect_like(DEAD, d)
}

pub fn encode_alive(a: &Alive) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(7)
        .field_uint("Incarnation", a.inc.into())
        .field_str("Node", &a.node)
        .field_str("ClusterName", &a.cluster)
        .field_bytes("Addr", &a.addr)
        .field_uint("Port", a.port.into())
        .field_bytes("Meta", &a.meta)
        .field_bytes("Vsn", &a.vsn);
    with_type(ALIVE, w)
}

pub fn encode_user(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 1);
    out.push(USER);
    out.extend_from_slice(msg);
    out
}

/// Go's `makeCompoundMessage` (at most 255 parts, each under 64 KiB).
pub fn compound(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![COMPOUND, msgs.len().min(255) as u8];
    for m in msgs.iter().take(255) {
        out.extend_from_slice(&(m.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    }
    for m in msgs.iter().take(255) {
        out.extend_from_slice(m);
    }
    out
}

/// `compressMsg{Algo: 0, Buf: lzw(body)}`.
pub fn compress(body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(2)
        .field_uint("Algo", 0)
        .field_bytes("Buf", &lzw::compress(body));
    with_type(COMPRESS, w)
}

/// What Go's `rawSendMsgPacket` does to a packet: compress if that makes it smaller,
/// then prepend a CRC when the peer understands protocol 5.
pub fn finish_packet(body: Vec<u8>, crc: bool) -> Vec<u8> {
    let c = compress(&body);
    let msg = if c.len() < body.len() { c } else { body };
    if !crc {
        return msg;
    }
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(HAS_CRC);
    out.extend_from_slice(&crc32fast::hash(&msg).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// Address bytes as memberlist writes them (4 bytes for IPv4).
pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    }
}

pub fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = Ipv6Addr::from(a);
            Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------

/// memberlist's node states on the wire.
pub const STATE_ALIVE: u8 = 0;
pub const STATE_SUSPECT: u8 = 1;
pub const STATE_DEAD: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushNodeState {
    pub name: String,
    pub addr: Vec<u8>,
    pub port: u16,
    pub meta: Vec<u8>,
    pub inc: u32,
    pub state: u8,
    pub vsn: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushPull {
    pub join: bool,
    pub cluster: String,
    pub nodes: Vec<PushNodeState>,
    pub user_state: Vec<u8>,
}

/// One message read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamMsg {
    PushPull(PushPull),
    Ping(Ping),
    Ack { seq: u32 },
    User(Vec<u8>),
}

/// Encodes a push/pull (uncompressed: Go reads both, and the JSON catalog inside
/// compresses well only when large; large ones are compressed, as Go does).
pub fn encode_push_pull(p: &PushPull) -> Vec<u8> {
    let mut w = Writer::new();
    w.map(4)
        .field_uint("Nodes", p.nodes.len() as u64)
        .field_str("ClusterName", &p.cluster)
        .field_uint("UserStateLen", p.user_state.len() as u64)
        .field_bool("Join", p.join);
    for n in &p.nodes {
        w.map(7)
            .field_str("Name", &n.name)
            .field_bytes("Addr", &n.addr)
            .field_uint("Port", n.port.into())
            .field_bytes("Meta", &n.meta)
            .field_uint("Incarnation", n.inc.into())
            .field_uint("State", n.state.into())
            .field_bytes("Vsn", &n.vsn);
    }
    let mut body = with_type(PUSH_PULL, w);
    body.extend_from_slice(&p.user_state);
    // Go's rawSendMsgStream compresses every stream when compression is on.
    compress(&body)
}

pub fn encode_stream_ack(seq: u32) -> Vec<u8> {
    encode_ack(seq)
}

/// Parses one stream message from the bytes received so far: `Ok(None)` means read
/// more. `max` bounds the message, compressed or not.
pub fn parse_stream(buf: &[u8], max: usize) -> Result<Option<StreamMsg>, CodecError> {
    let Some((&ty, rest)) = buf.split_first() else {
        return Ok(None);
    };
    if ty == COMPRESS {
        let v = match msgpack::decode(rest) {
            Ok((v, _)) => v,
            Err(DecodeError::Incomplete) if buf.len() <= max => return Ok(None),
            Err(DecodeError::Incomplete) => return Err(CodecError::TooLarge(max)),
            Err(e) => return Err(e.into()),
        };
        let inner = decompress_value(&v, max).map_err(|e| match e {
            CodecError::Lzw(lzw::LzwError::TooLarge(n)) => CodecError::TooLarge(n),
            e => e,
        })?;
        return match parse_plain(&inner)? {
            Some(m) => Ok(Some(m)),
            None => Err(CodecError::Truncated),
        };
    }
    if ty == ENCRYPT {
        return Err(CodecError::Encrypted);
    }
    match parse_plain(buf)? {
        Some(m) => Ok(Some(m)),
        None if buf.len() > max => Err(CodecError::TooLarge(max)),
        None => Ok(None),
    }
}

/// `Ok(None)`: incomplete.
fn parse_plain(buf: &[u8]) -> Result<Option<StreamMsg>, CodecError> {
    let Some((&ty, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let mut pos = 0usize;
    // Reads the next msgpack value; None when incomplete.
    let next = |pos: &mut usize| -> Result<Option<Value>, CodecError> {
        match msgpack::decode(&rest[*pos..]) {
            Ok((v, n)) => {
                *pos += n;
                Ok(Some(v))
            }
            Err(DecodeError::Incomplete) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    match ty {
        PUSH_PULL => {
            let Some(h) = next(&mut pos)? else {
                return Ok(None);
            };
            let n = h.uint("Nodes", 1 << 20)? as usize;
            let user_len = h.uint("UserStateLen", u64::from(u32::MAX))? as usize;
            // Each node state is a map of at least ~40 bytes: a count beyond what was
            // sent waits for more bytes, bounded by the caller's `max`.
            let mut nodes = Vec::new();
            for _ in 0..n {
                let Some(v) = next(&mut pos)? else {
                    return Ok(None);
                };
                nodes.push(PushNodeState {
                    name: v.string("Name", MAX_NAME)?,
                    addr: v.bytes("Addr")?,
                    port: u16_of(&v, "Port")?,
                    meta: v.bytes("Meta")?,
                    inc: u32_of(&v, "Incarnation")?,
                    state: v.uint("State", 255)? as u8,
                    vsn: v.bytes("Vsn")?,
                });
            }
            if rest.len() - pos < user_len {
                return Ok(None);
            }
            Ok(Some(StreamMsg::PushPull(PushPull {
                join: h.bool("Join")?,
                cluster: h.string("ClusterName", MAX_NAME)?,
                nodes,
                user_state: rest[pos..pos + user_len].to_vec(),
            })))
        }
        PING => Ok(next(&mut pos)?
            .map(|v| -> Result<_, CodecError> {
                Ok(StreamMsg::Ping(Ping {
                    seq: u32_of(&v, "SeqNo")?,
                    node: v.string("Node", MAX_NAME)?,
                }))
            })
            .transpose()?),
        ACK => Ok(next(&mut pos)?
            .map(|v| u32_of(&v, "SeqNo").map(|seq| StreamMsg::Ack { seq }))
            .transpose()?),
        USER => {
            let Some(h) = next(&mut pos)? else {
                return Ok(None);
            };
            let len = h.uint("UserMsgLen", u64::from(u32::MAX))? as usize;
            if rest.len() - pos < len {
                return Ok(None);
            }
            Ok(Some(StreamMsg::User(rest[pos..pos + len].to_vec())))
        }
        other => Err(CodecError::UnknownType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive() -> Alive {
        Alive {
            inc: 3,
            node: "n1".into(),
            cluster: "default".into(),
            addr: vec![10, 0, 0, 1],
            port: 7946,
            meta: br#"{"ClusterName":"default","State":"Running"}"#.to_vec(),
            vsn: VSN.to_vec(),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let msgs = vec![
            Message::Ping(Ping {
                seq: 1,
                node: "a".into(),
            }),
            Message::IndirectPing(IndirectPing {
                seq: 2,
                target: vec![127, 0, 0, 1],
                port: 7946,
                node: "b".into(),
                nack: true,
            }),
            Message::Ack { seq: 3 },
            Message::Nack { seq: 4 },
            Message::Suspect(Suspect {
                inc: 5,
                node: "c".into(),
                cluster: "default".into(),
                from: "d".into(),
            }),
            Message::Alive(alive()),
            Message::Dead(Suspect {
                inc: 6,
                node: "c".into(),
                cluster: "x".into(),
                from: "c".into(),
            }),
            Message::User(br#"{"ID":"x"}"#.to_vec()),
        ];
        let encoded: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| match m {
                Message::Ping(p) => encode_ping(p),
                Message::IndirectPing(p) => encode_indirect_ping(p),
                Message::Ack { seq } => encode_ack(*seq),
                Message::Nack { seq } => encode_nack(*seq),
                Message::Suspect(s) => encode_suspect(s),
                Message::Alive(a) => encode_alive(a),
                Message::Dead(d) => encode_dead(d),
                Message::User(u) => encode_user(u),
            })
            .collect();
        for (m, e) in msgs.iter().zip(&encoded) {
            assert_eq!(decode_packet(e).as_ref(), Ok(&vec![m.clone()]));
        }
        // compound, compressed, with a CRC
        let packet = finish_packet(compound(&encoded), true);
        assert_eq!(packet[0], HAS_CRC);
        assert_eq!(decode_packet(&packet), Ok(msgs.clone()));
        let mut bad = packet.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode_packet(&bad), Err(CodecError::Crc));
        assert_eq!(
            decode_packet(&compress(&compound(&encoded))),
            Ok(msgs),
            "explicitly compressed"
        );
    }

    #[test]
    fn alive_is_a_map_with_gos_field_names_and_cluster_name() {
        let e = encode_alive(&alive());
        assert_eq!(e[0], ALIVE);
        assert_eq!(e[1], 0x87);
        let (v, _) = msgpack::decode(&e[1..]).expect("msgpack");
        assert_eq!(v.string("ClusterName", 64).as_deref(), Ok("default"));
        assert_eq!(
            v.get("Vsn"),
            Some(&Value::Bytes(vec![1, 5, 2, 0, 0, 0])),
            "[]uint8 is raw bytes in go-msgpack"
        );
    }

    #[test]
    fn push_pull_parses_incrementally() {
        let p = PushPull {
            join: true,
            cluster: "default".into(),
            nodes: vec![PushNodeState {
                name: "n1".into(),
                addr: vec![10, 0, 0, 1],
                port: 7946,
                meta: vec![],
                inc: 9,
                state: STATE_ALIVE,
                vsn: VSN.to_vec(),
            }],
            user_state: br#"{"Servers":{}}"#.to_vec(),
        };
        let wire = encode_push_pull(&p);
        for cut in 0..wire.len() {
            assert_eq!(
                parse_stream(&wire[..cut], 1 << 20),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse_stream(&wire, 1 << 20),
            Ok(Some(StreamMsg::PushPull(p.clone())))
        );
        // Uncompressed too (what an older peer may send).
        let Some(StreamMsg::PushPull(_)) = parse_stream(&wire, 1 << 20).expect("ok") else {
            panic!("push/pull");
        };
        let big = PushPull {
            user_state: vec![b'a'; 100_000],
            ..p
        };
        assert_eq!(
            parse_stream(&encode_push_pull(&big), 50_000),
            Err(CodecError::TooLarge(50_000))
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 0xdead_beefu32;
        let seeds = [
            encode_alive(&alive()),
            finish_packet(compound(&[encode_ack(1), encode_user(b"{}")]), true),
        ];
        for i in 0..20_000usize {
            let mut buf = seeds[i % 2].clone();
            for _ in 0..(i % 7) + 1 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let at = x as usize % buf.len();
                buf[at] = (x >> 8) as u8;
            }
            buf.truncate(buf.len() - (i % 3));
            let _ = decode_packet(&buf);
            let _ = parse_stream(&buf, 1 << 16);
        }
        assert_eq!(decode_packet(&[]), Err(CodecError::Empty));
        assert_eq!(decode_packet(&[ENCRYPT, 1]), Err(CodecError::Encrypted));
        assert_eq!(
            decode_packet(&[COMPOUND, 2, 0, 5]),
            Err(CodecError::Truncated)
        );
    }
}
