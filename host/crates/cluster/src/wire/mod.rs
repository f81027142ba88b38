//! The gossip wire format: datagrams (probes plus piggybacked items) and stream messages
//! (anti-entropy, oversize records). Plain bytes in, typed values out; framing with the
//! cluster label and encryption is [`frame`]'s job.
//!
//! ```text
//! datagram  = version(1) sender-key sender-generation(varint) message item*
//! message   = 0 gossip | 1/5 ping | 2 ack | 3 nack | 4 ping-req
//!           | 6 tree(root-key) | 7 ihave(ids) | 8 graft(ids)      (ids: count u64-le*)
//! item      = 1 member-update | 2 record
//! stream    = tag(1) flags(1) body            (flags bit 0: body is zstd, prefixed by its length)
//! ```

pub mod codec;
pub mod frame;
pub mod records;

pub use codec::{Reader, WireError, Writer};
pub use records::WireRecord;

use sidecar_catalog::Fingerprint;
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Version of the datagram and stream payloads.
pub const VERSION: u8 = 1;
/// Largest decompressed stream message we accept (a 10k-host catalog is ~20 MB).
pub const MAX_STREAM: usize = 64 << 20;
/// Streams smaller than this are not worth compressing.
const COMPRESS_OVER: usize = 512;

/// A value with a wire encoding (member keys and addresses).
pub trait Wire: Sized {
    fn put(&self, w: &mut Writer);
    fn get(r: &mut Reader) -> Result<Self, WireError>;
}

/// The identity of a member: its name. The daemon uses node names, the simulator
/// compact integers.
pub trait NodeKey: Wire + Clone + Ord + Hash + Debug + Send + Sync + 'static {
    /// The catalog announcer this member's records carry.
    fn announcer(&self) -> std::borrow::Cow<'_, str>;
}

/// Where a member is reached.
pub trait NodeAddr: Wire + Clone + Eq + Hash + Debug + Send + Sync + 'static {
    /// The sending host this address stands for, as per-sender limits count it (a
    /// socket address without its port: a TCP peer's port is ephemeral).
    fn source(&self) -> Self {
        self.clone()
    }
}

impl Wire for u32 {
    fn put(&self, w: &mut Writer) {
        w.varint(u64::from(*self));
    }
    fn get(r: &mut Reader) -> Result<Self, WireError> {
        r.varint_u32()
    }
}

impl NodeKey for u32 {
    fn announcer(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(format!("n{self}"))
    }
}
impl NodeAddr for u32 {}

impl Wire for Arc<str> {
    fn put(&self, w: &mut Writer) {
        w.str(self);
    }
    fn get(r: &mut Reader) -> Result<Self, WireError> {
        let s = r.bytes(255)?;
        let s = std::str::from_utf8(s).map_err(|_| WireError::Utf8)?;
        if s.is_empty() {
            return Err(WireError::Invalid);
        }
        Ok(Arc::from(s))
    }
}

impl NodeKey for Arc<str> {
    fn announcer(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl Wire for SocketAddr {
    fn put(&self, w: &mut Writer) {
        match self.ip() {
            IpAddr::V4(ip) => {
                w.u8(4);
                w.raw(&ip.octets());
            }
            IpAddr::V6(ip) => {
                w.u8(6);
                w.raw(&ip.octets());
            }
        }
        w.raw(&self.port().to_le_bytes());
    }
    fn get(r: &mut Reader) -> Result<Self, WireError> {
        let ip = match r.u8()? {
            4 => {
                let b = r.take(4)?;
                IpAddr::from([b[0], b[1], b[2], b[3]])
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(r.take(16)?);
                IpAddr::from(a)
            }
            t => return Err(WireError::Tag(t)),
        };
        let p = r.take(2)?;
        Ok(SocketAddr::new(ip, u16::from_le_bytes([p[0], p[1]])))
    }
}
impl NodeAddr for SocketAddr {
    fn source(&self) -> Self {
        SocketAddr::new(self.ip(), 0)
    }
}

/// A member's state as gossip states it. Within one generation and incarnation a later
/// state in this order overrides an earlier one.
/// This is the one member-state type: the API, metrics and UI read it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum State {
    Alive = 0,
    Suspect = 1,
    Dead = 2,
    Left = 3,
}

impl State {
    pub fn from_u8(v: u8) -> Result<State, WireError> {
        Ok(match v {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Dead,
            3 => State::Left,
            t => return Err(WireError::Tag(t)),
        })
    }

    /// Alive or suspect: still a member whose records stand.
    pub fn is_live(self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
            State::Left => "left",
        }
    }
}

/// A claim about one member. `generation` is the member's start (a new life), `inc` its
/// incarnation within that life (raised to refute suspicion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberUpdate<K, A> {
    pub key: K,
    pub addr: A,
    pub generation: u64,
    pub inc: u32,
    pub state: State,
    /// Who suspects (suspicion confirmations count distinct suspecters).
    pub from: Option<K>,
}

impl<K: Wire, A: Wire> MemberUpdate<K, A> {
    pub fn put(&self, w: &mut Writer) {
        self.key.put(w);
        self.addr.put(w);
        w.varint(self.generation);
        w.varint(u64::from(self.inc));
        match &self.from {
            None => w.u8(self.state as u8),
            Some(from) => {
                w.u8(self.state as u8 | 0x80);
                from.put(w);
            }
        }
    }

    pub fn get(r: &mut Reader) -> Result<Self, WireError> {
        let key = K::get(r)?;
        let addr = A::get(r)?;
        let generation = r.varint()?;
        let inc = r.varint_u32()?;
        let s = r.u8()?;
        let state = State::from_u8(s & 0x7f)?;
        let from = if s & 0x80 != 0 {
            Some(K::get(r)?)
        } else {
            None
        };
        Ok(MemberUpdate {
            key,
            addr,
            generation,
            inc,
            state,
            from,
        })
    }
}

/// Something piggybacked on datagrams and disseminated by gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, decoded one at a time
pub enum Item<K, A> {
    Member(MemberUpdate<K, A>),
    Record(WireRecord),
}

const ITEM_MEMBER: u8 = 1;
const ITEM_RECORD: u8 = 2;

impl<K: Wire, A: Wire> Item<K, A> {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        match self {
            Item::Member(m) => {
                w.u8(ITEM_MEMBER);
                m.put(&mut w);
            }
            Item::Record(r) => {
                w.u8(ITEM_RECORD);
                records::put_record(&mut w, &r.announcer, &r.service);
            }
        }
        w.into_inner()
    }

    fn get(r: &mut Reader) -> Result<Self, WireError> {
        match r.u8()? {
            ITEM_MEMBER => Ok(Item::Member(MemberUpdate::get(r)?)),
            ITEM_RECORD => Ok(Item::Record(records::get_record(r)?)),
            t => Err(WireError::Tag(t)),
        }
    }
}

/// What the sender claims about the target of a ping (Lifeguard's buddy system: a
/// suspected or dead-declared member learns it at once and refutes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub state: State,
    pub generation: u64,
    pub inc: u32,
}

/// The primary message of a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg<K, A> {
    /// Only items.
    Gossip,
    Ping {
        seq: u32,
        target: K,
        claim: Option<Claim>,
    },
    Ack {
        seq: u32,
    },
    /// "I could not reach the target in time" from a relay (Lifeguard).
    Nack {
        seq: u32,
    },
    /// Ask the receiver to probe `target` for us.
    PingReq {
        seq: u32,
        target: K,
        addr: A,
    },
    /// The record items of this datagram travel down `root`'s broadcast tree: the
    /// receiver forwards what is new to it to its own children in that tree.
    Tree {
        root: K,
    },
    /// "I have these items" (ids of recent items, [`MAX_IDS`] at most): lazy
    /// announcements outside the tree, which repair what the tree lost.
    IHave {
        ids: Vec<u64>,
    },
    /// "Send me these items": the answer to an announcement of items we still lack.
    Graft {
        ids: Vec<u64>,
    },
}

/// Most item ids one announcement or graft carries (a datagram holds ~170).
pub const MAX_IDS: usize = 256;

fn put_ids(w: &mut Writer, ids: &[u64]) {
    w.varint(ids.len() as u64);
    ids.iter().for_each(|i| w.u64_le(*i));
}

fn get_ids(r: &mut Reader) -> Result<Vec<u64>, WireError> {
    let n = r.count(8)?;
    if n > MAX_IDS {
        return Err(WireError::TooLong(n as u64));
    }
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.u64_le()?);
    }
    Ok(ids)
}

/// A decoded datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<K, A> {
    pub sender: K,
    pub sender_generation: u64,
    pub msg: Msg<K, A>,
    pub items: Vec<Item<K, A>>,
}

/// Encodes a datagram's header and message; the caller appends encoded items.
pub fn encode_head<K: Wire, A: Wire>(
    sender: &K,
    sender_generation: u64,
    msg: &Msg<K, A>,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(256);
    w.u8(VERSION);
    sender.put(&mut w);
    w.varint(sender_generation);
    match msg {
        Msg::Gossip => w.u8(0),
        Msg::Ping { seq, target, claim } => {
            w.u8(if claim.is_some() { 5 } else { 1 });
            w.u32_le(*seq);
            target.put(&mut w);
            if let Some(c) = claim {
                w.u8(c.state as u8);
                w.varint(c.generation);
                w.varint(u64::from(c.inc));
            }
        }
        Msg::Ack { seq } => {
            w.u8(2);
            w.u32_le(*seq);
        }
        Msg::Nack { seq } => {
            w.u8(3);
            w.u32_le(*seq);
        }
        Msg::PingReq { seq, target, addr } => {
            w.u8(4);
            w.u32_le(*seq);
            target.put(&mut w);
            addr.put(&mut w);
        }
        Msg::Tree { root } => {
            w.u8(6);
            root.put(&mut w);
        }
        Msg::IHave { ids } => {
            w.u8(7);
            put_ids(&mut w, ids);
        }
        Msg::Graft { ids } => {
            w.u8(8);
            put_ids(&mut w, ids);
        }
    }
    w.into_inner()
}

/// Decodes a datagram payload (after [`frame`] removed label and encryption).
pub fn decode_packet<K: Wire, A: Wire>(buf: &[u8]) -> Result<Packet<K, A>, WireError> {
    let mut r = Reader::new(buf);
    let v = r.u8()?;
    if v != VERSION {
        return Err(WireError::Version(v));
    }
    let sender = K::get(&mut r)?;
    let sender_generation = r.varint()?;
    let msg = match r.u8()? {
        0 => Msg::Gossip,
        t @ (1 | 5) => {
            let seq = r.u32_le()?;
            let target = K::get(&mut r)?;
            let claim = if t == 5 {
                Some(Claim {
                    state: State::from_u8(r.u8()?)?,
                    generation: r.varint()?,
                    inc: r.varint_u32()?,
                })
            } else {
                None
            };
            Msg::Ping { seq, target, claim }
        }
        2 => Msg::Ack { seq: r.u32_le()? },
        3 => Msg::Nack { seq: r.u32_le()? },
        4 => Msg::PingReq {
            seq: r.u32_le()?,
            target: K::get(&mut r)?,
            addr: A::get(&mut r)?,
        },
        6 => Msg::Tree {
            root: K::get(&mut r)?,
        },
        7 => Msg::IHave {
            ids: get_ids(&mut r)?,
        },
        8 => Msg::Graft {
            ids: get_ids(&mut r)?,
        },
        t => return Err(WireError::Tag(t)),
    };
    let mut items = Vec::new();
    while !r.is_empty() {
        items.push(Item::get(&mut r)?);
    }
    Ok(Packet {
        sender,
        sender_generation,
        msg,
        items,
    })
}

/// Opening message of an anti-entropy exchange: summaries only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDigest<K, A> {
    pub sender: MemberUpdate<K, A>,
    pub join: bool,
    pub members_hash: u64,
    /// Fingerprints of the catalog's hosts hashed into `1 << bucket_bits` buckets.
    pub bucket_bits: u8,
    pub buckets: Vec<u64>,
}

/// Reply to a digest: what differs, seen from the responder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncHosts<K, A> {
    /// The responder's members, when the member hashes differ.
    pub members: Option<Vec<MemberUpdate<K, A>>>,
    /// Buckets whose fingerprints differ.
    pub buckets: Vec<u32>,
    /// The responder's host fingerprints inside those buckets.
    pub hosts: Vec<(String, Fingerprint)>,
}

/// Second request: the initiator's differing records, and what it wants back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRecords<K, A> {
    pub members: Option<Vec<MemberUpdate<K, A>>>,
    pub records: Vec<WireRecord>,
    pub want: Vec<String>,
}

/// Messages on the reliable (TCP) channel. Each request gets exactly one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stream<K, A> {
    Digest(SyncDigest<K, A>),
    Hosts(SyncHosts<K, A>),
    Records(SyncRecords<K, A>),
    RecordsReply(Vec<WireRecord>),
    /// Records too large for a datagram, pushed eagerly.
    Push(Vec<WireRecord>),
    Done,
}

fn put_members<K: Wire, A: Wire>(w: &mut Writer, m: &Option<Vec<MemberUpdate<K, A>>>) {
    match m {
        None => w.u8(0),
        Some(list) => {
            w.u8(1);
            w.varint(list.len() as u64);
            list.iter().for_each(|u| u.put(w));
        }
    }
}

fn get_members<K: Wire, A: Wire>(
    r: &mut Reader,
) -> Result<Option<Vec<MemberUpdate<K, A>>>, WireError> {
    if r.u8()? == 0 {
        return Ok(None);
    }
    let n = r.count(6)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(MemberUpdate::get(r)?);
    }
    Ok(Some(v))
}

fn put_records(w: &mut Writer, recs: &[WireRecord]) {
    w.varint(recs.len() as u64);
    for r in recs {
        records::put_record(w, &r.announcer, &r.service);
    }
}

fn get_records(r: &mut Reader) -> Result<Vec<WireRecord>, WireError> {
    let n = r.count(12)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(records::get_record(r)?);
    }
    Ok(v)
}

fn put_fp(w: &mut Writer, fp: &Fingerprint) {
    w.varint(u64::from(fp.count));
    w.u64_le(fp.hash);
}

fn get_fp(r: &mut Reader) -> Result<Fingerprint, WireError> {
    Ok(Fingerprint {
        count: r.varint_u32()?,
        hash: r.u64_le()?,
    })
}

/// `version tag flags body`, compressing large bodies with zstd.
fn finish(tag: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    out.push(VERSION);
    out.push(tag);
    if body.len() > COMPRESS_OVER
        && let Ok(z) = zstd::bulk::compress(&body, 3)
        && z.len() + 8 < body.len()
    {
        out.push(1);
        let mut w = Writer::new();
        w.varint(body.len() as u64);
        out.extend_from_slice(&w.buf);
        out.extend_from_slice(&z);
        return out;
    }
    out.push(0);
    out.extend_from_slice(&body);
    out
}

/// An encoded records reply with the records of `want`'s hosts, stopping before the
/// uncompressed body exceeds `max_body` bytes (the requester asks again in a later
/// exchange); returns the reply and whether it was cut short.
pub fn encode_records_reply<R>(
    want: &[String],
    max_body: usize,
    mut host_records: impl FnMut(&str) -> R,
) -> (Vec<u8>, bool)
where
    R: IntoIterator<Item = sidecar_catalog::Record>,
{
    let mut recs = Writer::with_capacity(256);
    let mut count = 0u64;
    let mut cut = false;
    'hosts: for host in want {
        for r in host_records(host) {
            let before = recs.len();
            records::put_record(&mut recs, &r.announcer, &r.service);
            if recs.len() > max_body {
                recs.buf.truncate(before);
                cut = true;
                break 'hosts;
            }
            count += 1;
        }
    }
    let mut body = Writer::with_capacity(recs.len() + 10);
    body.varint(count);
    body.raw(&recs.buf);
    (finish(4, body.into_inner()), cut)
}

impl<K: Wire, A: Wire> Stream<K, A> {
    /// Encodes, compressing large bodies with zstd.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        let tag = match self {
            Stream::Digest(d) => {
                d.sender.put(&mut w);
                w.u8(u8::from(d.join));
                w.u64_le(d.members_hash);
                w.u8(d.bucket_bits);
                w.varint(d.buckets.len() as u64);
                d.buckets.iter().for_each(|b| w.u64_le(*b));
                1
            }
            Stream::Hosts(h) => {
                put_members(&mut w, &h.members);
                w.varint(h.buckets.len() as u64);
                h.buckets.iter().for_each(|b| w.varint(u64::from(*b)));
                w.varint(h.hosts.len() as u64);
                for (host, fp) in &h.hosts {
                    w.str(host);
                    put_fp(&mut w, fp);
                }
                2
            }
            Stream::Records(s) => {
                put_members(&mut w, &s.members);
                put_records(&mut w, &s.records);
                w.varint(s.want.len() as u64);
                s.want.iter().for_each(|h| w.str(h));
                3
            }
            Stream::RecordsReply(recs) => {
                put_records(&mut w, recs);
                4 // as encode_records_reply
            }
            Stream::Push(recs) => {
                put_records(&mut w, recs);
                5
            }
            Stream::Done => 6,
        };
        finish(tag, w.into_inner())
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let v = r.u8()?;
        if v != VERSION {
            return Err(WireError::Version(v));
        }
        let tag = r.u8()?;
        let owned;
        let body: &[u8] = match r.u8()? {
            0 => r.rest(),
            1 => {
                let n = r.varint()?;
                if n > MAX_STREAM as u64 {
                    return Err(WireError::TooLong(n));
                }
                owned = zstd::bulk::decompress(r.rest(), n as usize)
                    .map_err(|_| WireError::Decompress)?;
                &owned
            }
            f => return Err(WireError::Tag(f)),
        };
        let mut r = Reader::new(body);
        let msg = match tag {
            1 => {
                let sender = MemberUpdate::get(&mut r)?;
                let join = r.u8()? != 0;
                let members_hash = r.u64_le()?;
                let bucket_bits = r.u8()?;
                if bucket_bits > 16 {
                    return Err(WireError::Invalid);
                }
                let n = r.count(8)?;
                if n != 1usize << bucket_bits {
                    return Err(WireError::Invalid);
                }
                let mut buckets = Vec::with_capacity(n);
                for _ in 0..n {
                    buckets.push(r.u64_le()?);
                }
                Stream::Digest(SyncDigest {
                    sender,
                    join,
                    members_hash,
                    bucket_bits,
                    buckets,
                })
            }
            2 => {
                let members = get_members(&mut r)?;
                let n = r.count(1)?;
                let mut buckets = Vec::with_capacity(n);
                for _ in 0..n {
                    buckets.push(r.varint_u32()?);
                }
                let n = r.count(10)?;
                let mut hosts = Vec::with_capacity(n);
                for _ in 0..n {
                    hosts.push((r.string()?, get_fp(&mut r)?));
                }
                Stream::Hosts(SyncHosts {
                    members,
                    buckets,
                    hosts,
                })
            }
            3 => {
                let members = get_members(&mut r)?;
                let records = get_records(&mut r)?;
                let n = r.count(1)?;
                let mut want = Vec::with_capacity(n);
                for _ in 0..n {
                    want.push(r.string()?);
                }
                Stream::Records(SyncRecords {
                    members,
                    records,
                    want,
                })
            }
            4 => Stream::RecordsReply(get_records(&mut r)?),
            5 => Stream::Push(get_records(&mut r)?),
            6 => Stream::Done,
            t => return Err(WireError::Tag(t)),
        };
        if !r.is_empty() {
            return Err(WireError::Invalid);
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::records::tests::sample;

    type K = Arc<str>;
    type A = SocketAddr;

    fn upd(name: &str, state: State) -> MemberUpdate<K, A> {
        MemberUpdate {
            key: Arc::from(name),
            addr: "127.0.0.3:7946".parse().expect("addr"),
            generation: 1_714_557_605_000,
            inc: 7,
            state,
            from: (state == State::Suspect).then(|| Arc::from("n9")),
        }
    }

    #[test]
    fn datagrams_round_trip() {
        let msgs: Vec<Msg<K, A>> = vec![
            Msg::Gossip,
            Msg::Ping {
                seq: 9,
                target: Arc::from("n2"),
                claim: None,
            },
            Msg::Ping {
                seq: 9,
                target: Arc::from("n2"),
                claim: Some(Claim {
                    state: State::Suspect,
                    generation: 5,
                    inc: 2,
                }),
            },
            Msg::Ack { seq: u32::MAX },
            Msg::Nack { seq: 3 },
            Msg::PingReq {
                seq: 4,
                target: Arc::from("n3"),
                addr: "[::1]:7946".parse().expect("addr"),
            },
            Msg::Tree {
                root: Arc::from("n7"),
            },
            Msg::IHave {
                ids: vec![0, 1, u64::MAX],
            },
            Msg::Graft { ids: vec![] },
            Msg::Graft { ids: vec![42] },
        ];
        let items: Vec<Item<K, A>> = vec![
            Item::Member(upd("n1", State::Alive)),
            Item::Member(upd("n1", State::Suspect)),
            Item::Record(WireRecord {
                announcer: "n1".into(),
                service: sample("n1", "abc"),
            }),
        ];
        for msg in msgs {
            let mut buf = encode_head(&Arc::<str>::from("n1"), 42, &msg);
            items.iter().for_each(|i| buf.extend(i.encode()));
            let p: Packet<K, A> = decode_packet(&buf).expect("decodes");
            assert_eq!(p.msg, msg);
            assert_eq!(p.items, items);
            assert_eq!(p.sender_generation, 42);
            for cut in 0..buf.len() {
                let _ = decode_packet::<K, A>(&buf[..cut]);
            }
        }
    }

    #[test]
    fn announcements_and_grafts_are_bounded() {
        let ids: Vec<u64> = (0..MAX_IDS as u64).collect();
        let buf = encode_head::<K, A>(&Arc::from("n1"), 1, &Msg::IHave { ids });
        assert!(decode_packet::<K, A>(&buf).is_ok());
        // One id more than the cap, or a count the bytes cannot hold, is refused.
        for (tag, n, body) in [(7u8, MAX_IDS + 1, MAX_IDS + 1), (8, 1 << 40, 2)] {
            let mut w = Writer::new();
            w.u8(VERSION);
            Arc::<str>::from("n1").put(&mut w);
            w.varint(1);
            w.u8(tag);
            w.varint(n as u64);
            (0..body).for_each(|i| w.u64_le(i as u64));
            assert!(decode_packet::<K, A>(&w.buf).is_err(), "tag {tag}, {n} ids");
        }
    }

    #[test]
    fn streams_round_trip_and_compress() {
        let recs: Vec<WireRecord> = (0..200)
            .map(|i| WireRecord {
                announcer: "n1".into(),
                service: sample("n1", &format!("svc{i}")),
            })
            .collect();
        let msgs: Vec<Stream<K, A>> = vec![
            Stream::Digest(SyncDigest {
                sender: upd("n1", State::Alive),
                join: true,
                members_hash: 77,
                bucket_bits: 2,
                buckets: vec![1, 2, 3, 4],
            }),
            Stream::Hosts(SyncHosts {
                members: Some(vec![upd("a", State::Dead), upd("b", State::Left)]),
                buckets: vec![0, 3],
                hosts: vec![("h".into(), Fingerprint { count: 3, hash: 99 })],
            }),
            Stream::Records(SyncRecords {
                members: None,
                records: recs.clone(),
                want: vec!["h".into()],
            }),
            Stream::RecordsReply(recs.clone()),
            Stream::Push(recs[..1].to_vec()),
            Stream::Done,
        ];
        for m in msgs {
            let buf = m.encode();
            assert_eq!(Stream::decode(&buf), Ok(m));
        }
        let big = Stream::<K, A>::RecordsReply(recs).encode();
        assert_eq!(big[2], 1, "large bodies are compressed");
        assert!(big.len() < 200 * 20);
    }

    #[test]
    fn records_replies_are_bounded() {
        let host_records = |h: &str| {
            (0..50)
                .map(|i| sidecar_catalog::Record {
                    announcer: Arc::from(h),
                    service: sample(h, &format!("svc{i}")),
                })
                .collect::<Vec<_>>()
        };
        let want: Vec<String> = vec!["h1".into(), "h2".into()];
        let (all, cut) = encode_records_reply(&want, MAX_STREAM, host_records);
        assert!(!cut);
        let Ok(Stream::<K, A>::RecordsReply(recs)) = Stream::decode(&all) else {
            panic!("a records reply");
        };
        assert_eq!(recs.len(), 100);
        let (some, cut) = encode_records_reply(&want, 2_000, host_records);
        assert!(cut);
        let Ok(Stream::<K, A>::RecordsReply(recs)) = Stream::decode(&some) else {
            panic!("a records reply");
        };
        assert!(!recs.is_empty() && recs.len() < 50, "{}", recs.len());
    }

    #[test]
    fn hostile_streams_are_refused() {
        // Claims a 1 TB decompressed body.
        let mut w = Writer::new();
        w.raw(&[VERSION, 4, 1]);
        w.varint(1 << 40);
        assert!(Stream::<K, A>::decode(&w.buf).is_err());
        // Claims 2^40 records.
        let mut w = Writer::new();
        w.raw(&[VERSION, 4, 0]);
        w.varint(1 << 40);
        assert!(Stream::<K, A>::decode(&w.buf).is_err());
        assert!(Stream::<K, A>::decode(&[VERSION, 99, 0]).is_err());
    }
}
