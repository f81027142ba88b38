//! One query in, one response out: parses the query with hickory-proto (the hostile part)
//! and writes the response from the index's pre-encoded records (the fast part).
//!
//! The response echoes the question as received (case included, for resolvers that
//! randomise it), and every answer's owner is a pointer to it. Over UDP a response
//! that does not fit the client's size (512 bytes without EDNS, else what it
//! advertised, at most [`UDP_MAX`]) carries the answers that fit and the TC bit; the
//! additional section is dropped first without TC, as glue is optional.

use super::index::{Index, T_A, T_AAAA, T_NS, T_SOA, T_SRV, T_TXT};
use hickory_proto::op::{Header, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};

/// The largest UDP response we send, and the size we advertise in EDNS (the DNS flag
/// day 2020 value: no IP fragmentation on any common path).
pub const UDP_MAX: u16 = 1232;
/// Without EDNS, RFC 1035's limit.
const UDP_CLASSIC: usize = 512;
const HEADER_LEN: usize = 12;
/// Our OPT record: root owner, type, payload size, extended rcode, version, flags,
/// empty data.
const OPT_LEN: usize = 11;

/// How the query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Response codes we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    BadVers,
}

impl Rcode {
    pub const ALL: [Rcode; 7] = [
        Rcode::NoError,
        Rcode::FormErr,
        Rcode::ServFail,
        Rcode::NxDomain,
        Rcode::NotImp,
        Rcode::Refused,
        Rcode::BadVers,
    ];

    fn code(self) -> u16 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::BadVers => 16,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rcode::NoError => "noerror",
            Rcode::FormErr => "formerr",
            Rcode::ServFail => "servfail",
            Rcode::NxDomain => "nxdomain",
            Rcode::NotImp => "notimp",
            Rcode::Refused => "refused",
            Rcode::BadVers => "badvers",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a query was bad (the `reason` label of `sidecar_dns_bad_queries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bad {
    /// Shorter than a header: nothing to answer to.
    Short,
    /// A response, not a query: never answered (no reflection loops).
    NotQuery,
    /// An opcode other than QUERY.
    Opcode,
    /// Not exactly one question.
    QuestionCount,
    /// The packet does not parse.
    Malformed,
    /// A name over 255 bytes or a label over 63.
    NameTooLong,
    /// A class other than IN.
    Class,
    /// Zone transfers and other meta types.
    Type,
    /// An EDNS version we do not speak.
    EdnsVersion,
}

impl Bad {
    pub const ALL: [Bad; 9] = [
        Bad::Short,
        Bad::NotQuery,
        Bad::Opcode,
        Bad::QuestionCount,
        Bad::Malformed,
        Bad::NameTooLong,
        Bad::Class,
        Bad::Type,
        Bad::EdnsVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bad::Short => "short",
            Bad::NotQuery => "not_a_query",
            Bad::Opcode => "opcode",
            Bad::QuestionCount => "question_count",
            Bad::Malformed => "malformed",
            Bad::NameTooLong => "name_too_long",
            Bad::Class => "class",
            Bad::Type => "type",
            Bad::EdnsVersion => "edns_version",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What to do with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the response written to `out`.
    Reply {
        rcode: Rcode,
        bad: Option<Bad>,
        truncated: bool,
    },
    /// A name outside the domain and recursors are configured: forward it as is.
    Forward,
    /// Send nothing.
    Drop(Bad),
}

/// Settings the answers depend on.
#[derive(Debug, Clone, Copy)]
pub struct AnswerConfig {
    /// Recursors are configured: RA is set and names outside the domain are forwarded.
    pub recursion: bool,
}

/// The parsed parts of a query that the response needs.
struct Parsed {
    id: u16,
    opcode: u8,
    rd: bool,
    cd: bool,
    edns: Option<EdnsIn>,
}

#[derive(Clone, Copy)]
struct EdnsIn {
    payload: u16,
}

/// Answers `query` into `out`. `rotor` picks where each answer list starts, so that
/// successive queries see the records in rotated order.
pub fn respond(
    index: &Index,
    cfg: AnswerConfig,
    query: &[u8],
    transport: Transport,
    rotor: usize,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let mut dec = BinDecoder::new(query);
    let Ok(header) = Header::read(&mut dec) else {
        return Outcome::Drop(Bad::Short);
    };
    if header.metadata.message_type != MessageType::Query {
        return Outcome::Drop(Bad::NotQuery);
    }
    let mut p = Parsed {
        id: header.metadata.id,
        opcode: (query[2] >> 3) & 0x0f,
        rd: header.metadata.recursion_desired,
        cd: header.metadata.checking_disabled,
        edns: None,
    };
    if header.metadata.op_code != OpCode::Query {
        return error(out, &p, None, Rcode::NotImp, Some(Bad::Opcode), cfg);
    }
    if header.counts.queries != 1 {
        return error(out, &p, None, Rcode::FormErr, Some(Bad::QuestionCount), cfg);
    }
    let q = match Query::read(&mut dec) {
        Ok(q) => q,
        Err(e) => {
            let bad = match e {
                DecodeError::DomainNameTooLong(_) | DecodeError::LabelBytesTooLong(_) => {
                    Bad::NameTooLong
                }
                _ => Bad::Malformed,
            };
            return error(out, &p, None, Rcode::FormErr, Some(bad), cfg);
        }
    };
    // The other sections: only the additional one's OPT matters, but all must parse.
    let op = header.metadata.op_code;
    let edns = Message::read_records(&mut dec, header.counts.answers as usize, false, op)
        .and_then(|_| {
            Message::read_records(&mut dec, header.counts.authorities as usize, false, op)
        })
        .and_then(|_| {
            Message::read_records(&mut dec, header.counts.additionals as usize, true, op)
        });
    let edns = match edns {
        Ok((_, edns, _)) => edns,
        Err(_) => return error(out, &p, Some(&q), Rcode::FormErr, Some(Bad::Malformed), cfg),
    };
    if let Some(e) = &edns {
        p.edns = Some(EdnsIn {
            payload: e.max_payload(),
        });
        if e.version() > 0 {
            return error(
                out,
                &p,
                Some(&q),
                Rcode::BadVers,
                Some(Bad::EdnsVersion),
                cfg,
            );
        }
    }
    if q.query_class() != DNSClass::IN {
        return error(out, &p, Some(&q), Rcode::Refused, Some(Bad::Class), cfg);
    }
    let qtype = q.query_type();
    match qtype {
        RecordType::AXFR | RecordType::IXFR => {
            return error(out, &p, Some(&q), Rcode::NotImp, Some(Bad::Type), cfg);
        }
        RecordType::OPT => {
            return error(out, &p, Some(&q), Rcode::FormErr, Some(Bad::Type), cfg);
        }
        RecordType::Unknown(253 | 254) => {
            return error(out, &p, Some(&q), Rcode::NotImp, Some(Bad::Type), cfg);
        }
        _ => {}
    }

    // The name relative to the domain, as the index's key.
    let Some((key, key_len)) = relative_key(index, &q) else {
        if cfg.recursion {
            return Outcome::Forward;
        }
        return error(out, &p, Some(&q), Rcode::Refused, None, cfg);
    };
    let key = &key[..key_len];

    let limit = match (transport, p.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => UDP_CLASSIC,
        (Transport::Udp, Some(e)) => (e.payload as usize).clamp(UDP_CLASSIC, UDP_MAX as usize),
    };
    let reserve = if p.edns.is_some() { OPT_LEN } else { 0 };
    let limit = limit - reserve;

    write_header(out, &p, true, cfg.recursion);
    write_question(out, &q);
    let (mut an, mut ns, mut ar) = (0u16, 0u16, 0u16);
    let mut truncated = false;
    let rcode;
    match index.get(key) {
        None => {
            rcode = Rcode::NxDomain;
            ns += push_soa(out, index, key_len, limit, &mut truncated);
        }
        Some(node) => {
            let code: u16 = qtype.into();
            let mut srv = false;
            for (t, set) in &node.sets {
                let wanted = code == *t || (qtype == RecordType::ANY && is_ours(*t));
                if !wanted || set.is_empty() {
                    continue;
                }
                srv |= *t == T_SRV;
                let start = rotor % set.len();
                for j in 0..set.len() {
                    let rr = set.get((start + j) % set.len());
                    if out.len() + 2 + rr.len() > limit {
                        truncated = true;
                        break;
                    }
                    out.extend_from_slice(&[0xc0, 0x0c]);
                    out.extend_from_slice(rr);
                    an += 1;
                }
                if truncated {
                    break;
                }
            }
            rcode = Rcode::NoError;
            if an == 0 && !truncated {
                // NODATA: the name exists, not with this type.
                ns += push_soa(out, index, key_len, limit, &mut truncated);
            } else if srv && !truncated && !node.glue.is_empty() {
                let glue = &node.glue;
                let start = rotor % glue.len();
                for j in 0..glue.len() {
                    let rr = glue.get((start + j) % glue.len());
                    if out.len() + rr.len() > limit {
                        break;
                    }
                    out.extend_from_slice(rr);
                    ar += 1;
                }
            }
        }
    }
    if p.edns.is_some() {
        write_opt(out, rcode);
        ar += 1;
    }
    finish(out, 1, rcode, an, ns, ar, truncated);
    Outcome::Reply {
        rcode,
        bad: None,
        truncated,
    }
}

fn is_ours(t: u16) -> bool {
    matches!(t, T_A | T_AAAA | T_SRV | T_TXT | T_NS | T_SOA)
}

/// The question's labels in front of the domain, lowercase, in wire form; `None` when
/// the name is not under the domain.
fn relative_key(index: &Index, q: &Query) -> Option<([u8; 256], usize)> {
    let name = q.name();
    // Not `num_labels`: it does not count a leading `*`.
    let labels = name.iter().count();
    if labels < index.apex_labels {
        return None;
    }
    let relative = labels - index.apex_labels;
    let mut key = [0u8; 256];
    let mut len = 0;
    let mut apex_at = 0;
    for (i, label) in name.iter().enumerate() {
        if i < relative {
            if len + 1 + label.len() > key.len() {
                return None;
            }
            key[len] = label.len() as u8;
            for (d, s) in key[len + 1..len + 1 + label.len()].iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
            len += 1 + label.len();
        } else {
            let want_len = *index.apex.get(apex_at)? as usize;
            let want = index.apex.get(apex_at + 1..apex_at + 1 + want_len)?;
            if !want.eq_ignore_ascii_case(label) {
                return None;
            }
            apex_at += 1 + want_len;
        }
    }
    Some((key, len))
}

fn write_header(out: &mut Vec<u8>, p: &Parsed, authoritative: bool, recursion: bool) {
    out.extend_from_slice(&p.id.to_be_bytes());
    let mut b2 = 0x80 | (p.opcode << 3);
    if authoritative {
        b2 |= 0x04;
    }
    if p.rd {
        b2 |= 0x01;
    }
    let mut b3 = 0u8;
    if recursion {
        b3 |= 0x80;
    }
    if p.cd {
        b3 |= 0x10;
    }
    out.extend_from_slice(&[b2, b3]);
    // Counts, patched by `finish`.
    out.extend_from_slice(&[0; 8]);
}

/// The question as received: the name's labels in their original case, uncompressed.
fn write_question(out: &mut Vec<u8>, q: &Query) {
    for label in q.name().iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out.extend_from_slice(&u16::from(q.query_type()).to_be_bytes());
    out.extend_from_slice(&u16::from(q.query_class()).to_be_bytes());
}

/// The apex SOA in the authority section; its owner points at the domain's part of the
/// question name.
fn push_soa(
    out: &mut Vec<u8>,
    index: &Index,
    key_len: usize,
    limit: usize,
    truncated: &mut bool,
) -> u16 {
    if out.len() + 2 + index.soa.len() > limit {
        *truncated = true;
        return 0;
    }
    let at = (HEADER_LEN + key_len) as u16 | 0xc000;
    out.extend_from_slice(&at.to_be_bytes());
    out.extend_from_slice(&index.soa);
    1
}

fn write_opt(out: &mut Vec<u8>, rcode: Rcode) {
    out.push(0); // root
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&UDP_MAX.to_be_bytes());
    out.push((rcode.code() >> 4) as u8); // extended rcode
    out.push(0); // version
    out.extend_from_slice(&[0, 0]); // flags
    out.extend_from_slice(&[0, 0]); // no options
}

#[allow(clippy::too_many_arguments)]
fn finish(out: &mut [u8], qd: u16, rcode: Rcode, an: u16, ns: u16, ar: u16, truncated: bool) {
    out[3] |= (rcode.code() & 0x0f) as u8;
    if truncated {
        out[2] |= 0x02;
    }
    out[4..6].copy_from_slice(&qd.to_be_bytes());
    out[6..8].copy_from_slice(&an.to_be_bytes());
    out[8..10].copy_from_slice(&ns.to_be_bytes());
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// A response with no records: the question when we have it, OPT when the query had
/// EDNS.
fn error(
    out: &mut Vec<u8>,
    p: &Parsed,
    q: Option<&Query>,
    rcode: Rcode,
    bad: Option<Bad>,
    cfg: AnswerConfig,
) -> Outcome {
    out.clear();
    write_header(out, p, false, cfg.recursion);
    if let Some(q) = q {
        write_question(out, q);
    }
    let mut ar = 0;
    if p.edns.is_some() || rcode == Rcode::BadVers {
        write_opt(out, rcode);
        ar = 1;
    }
    finish(out, u16::from(q.is_some()), rcode, 0, 0, ar, false);
    Outcome::Reply {
        rcode,
        bad,
        truncated: false,
    }
}

/// SERVFAIL for a query we could not forward (the recursors did not answer).
pub fn servfail(query: &[u8], out: &mut Vec<u8>) -> bool {
    let mut dec = BinDecoder::new(query);
    let Ok(header) = Header::read(&mut dec) else {
        return false;
    };
    let Ok(q) = Query::read(&mut dec) else {
        return false;
    };
    let p = Parsed {
        id: header.metadata.id,
        opcode: (query[2] >> 3) & 0x0f,
        rd: header.metadata.recursion_desired,
        cd: header.metadata.checking_disabled,
        edns: None,
    };
    error(
        out,
        &p,
        Some(&q),
        Rcode::ServFail,
        None,
        AnswerConfig { recursion: true },
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::index::{IndexConfig, relative_wire};
    use hickory_proto::op::{Edns, ResponseCode};
    use hickory_proto::rr::{Name, RData};
    use sidecar_catalog::{Port, PortKind, Server, Service, ServicesState, Status};
    use sidecar_cluster::MemberList;
    use std::str::FromStr;

    const CFG: AnswerConfig = AnswerConfig { recursion: false };

    fn index(n: usize) -> Index {
        let mut st = ServicesState::new("host1", "default");
        let mut server = Server::new("host1");
        for i in 0..n {
            let id = format!("id{i}");
            server.services.insert(
                id.clone(),
                Service {
                    id,
                    name: "web".into(),
                    hostname: "host1".into(),
                    status: Status::Alive,
                    ports: vec![Port {
                        kind: PortKind::Tcp,
                        port: 30000 + i as u16,
                        service_port: 8080,
                        ip: format!("10.0.{}.{}", i / 250, i % 250 + 1),
                    }],
                    ..Service::default()
                },
            );
        }
        st.servers.insert("host1".into(), server);
        let cfg = IndexConfig {
            domain: "sidecar.local".into(),
            ttl: 0,
            advertise_ip: None,
        };
        Index::build(&cfg, 3, &st, &MemberList::default())
    }

    fn query(name: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_str(name).expect("name"), t));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().expect("encode")
    }

    fn ask(idx: &Index, q: &[u8], t: Transport, rotor: usize) -> (Outcome, Message) {
        let mut out = Vec::new();
        let outcome = respond(idx, CFG, q, t, rotor, &mut out);
        let msg = Message::from_vec(&out).expect("our response parses");
        (outcome, msg)
    }

    #[test]
    fn srv_answers_rotate_and_carry_glue() {
        let idx = index(3);
        let q = query(
            "_8080._web._tcp.sidecar.local.",
            RecordType::SRV,
            Some(1232),
        );
        let (o, m) = ask(&idx, &q, Transport::Udp, 0);
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::NoError,
                truncated: false,
                ..
            }
        ));
        assert!(m.authoritative);
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.additionals.len(), 3);
        assert!(m.edns.is_some());
        let first = |m: &Message| match &m.answers[0].data {
            RData::SRV(s) => s.port,
            other => panic!("{other:?}"),
        };
        let (_, m1) = ask(&idx, &q, Transport::Udp, 1);
        assert_ne!(first(&m), first(&m1));
        assert_eq!(
            m.answers[0].name,
            Name::from_str("_8080._web._tcp.sidecar.local.").expect("n")
        );
    }

    #[test]
    fn case_is_ignored_and_echoed() {
        let idx = index(1);
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_ascii("WEB.Service.SIDECAR.local.").expect("name"),
            RecordType::A,
        ));
        let q = m.to_vec().expect("encode");
        let (_, m) = ask(&idx, &q, Transport::Udp, 0);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(
            m.queries[0].name().to_string(),
            "WEB.Service.SIDECAR.local."
        );
    }

    #[test]
    fn negative_answers_carry_the_soa() {
        let idx = index(1);
        let (o, m) = ask(
            &idx,
            &query("nope.sidecar.local.", RecordType::A, None),
            Transport::Udp,
            0,
        );
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::NxDomain,
                ..
            }
        ));
        assert_eq!(m.response_code, ResponseCode::NXDomain);
        assert!(matches!(m.authorities[0].data, RData::SOA(_)));
        // NODATA: the name exists, not with that type; an empty non-terminal too.
        for (name, t) in [
            ("web.service.sidecar.local.", RecordType::MX),
            ("service.sidecar.local.", RecordType::A),
        ] {
            let (_, m) = ask(&idx, &query(name, t, None), Transport::Udp, 0);
            assert_eq!(m.response_code, ResponseCode::NoError, "{name}");
            assert!(m.answers.is_empty());
            assert!(matches!(m.authorities[0].data, RData::SOA(_)));
        }
    }

    #[test]
    fn udp_truncates_with_tc_and_tcp_does_not() {
        let idx = index(200);
        let q = query("web.service.sidecar.local.", RecordType::SRV, None);
        let (o, m) = ask(&idx, &q, Transport::Udp, 0);
        assert!(matches!(
            o,
            Outcome::Reply {
                truncated: true,
                ..
            }
        ));
        assert!(m.truncation);
        let mut out = Vec::new();
        respond(&idx, CFG, &q, Transport::Udp, 0, &mut out);
        assert!(out.len() <= 512);
        let (_, m) = ask(&idx, &q, Transport::Tcp, 0);
        assert!(!m.truncation);
        assert_eq!(m.answers.len(), 200);
        // EDNS raises the UDP limit to what the client says, up to ours.
        let q = query("web.service.sidecar.local.", RecordType::SRV, Some(4096));
        let mut out = Vec::new();
        respond(&idx, CFG, &q, Transport::Udp, 0, &mut out);
        assert!(out.len() > 512 && out.len() <= UDP_MAX as usize);
    }

    #[test]
    fn bad_queries_get_error_codes_and_never_panic() {
        let idx = index(1);
        let mut out = Vec::new();
        assert_eq!(
            respond(&idx, CFG, &[1, 2, 3], Transport::Udp, 0, &mut out),
            Outcome::Drop(Bad::Short)
        );
        let mut resp = query("web.service.sidecar.local.", RecordType::A, None);
        resp[2] |= 0x80;
        assert_eq!(
            respond(&idx, CFG, &resp, Transport::Udp, 0, &mut out),
            Outcome::Drop(Bad::NotQuery)
        );
        let mut ch = query("web.service.sidecar.local.", RecordType::A, None);
        let n = ch.len();
        ch[n - 1] = 3; // class CH
        let (o, m) = ask(&idx, &ch, Transport::Udp, 0);
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::Refused,
                bad: Some(Bad::Class),
                ..
            }
        ));
        assert_eq!(m.response_code, ResponseCode::Refused);
        let (o, _) = ask(
            &idx,
            &query("sidecar.local.", RecordType::AXFR, None),
            Transport::Tcp,
            0,
        );
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::NotImp,
                ..
            }
        ));
        let (o, _) = ask(
            &idx,
            &query("example.com.", RecordType::A, None),
            Transport::Udp,
            0,
        );
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::Refused,
                bad: None,
                ..
            }
        ));
        // Garbage after a valid header, and every prefix of a valid query.
        let good = query("web.service.sidecar.local.", RecordType::A, Some(1232));
        for cut in 12..good.len() {
            let o = respond(&idx, CFG, &good[..cut], Transport::Udp, 0, &mut out);
            assert!(
                matches!(
                    o,
                    Outcome::Reply {
                        rcode: Rcode::FormErr,
                        ..
                    }
                ),
                "cut at {cut}: {o:?}"
            );
        }
        let mut rng = 0x1234_5678u64;
        for _ in 0..20_000 {
            let len = (rng % 600) as usize;
            let pkt: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng as u8
                })
                .collect();
            let _ = respond(&idx, CFG, &pkt, Transport::Udp, 0, &mut out);
        }
    }

    #[test]
    fn edns_versions_above_zero_get_badvers() {
        let idx = index(1);
        let mut m = Message::query();
        m.add_query(Query::query(
            Name::from_str("web.service.sidecar.local.").expect("n"),
            RecordType::A,
        ));
        let mut e = Edns::new();
        e.set_version(1);
        m.set_edns(e);
        let (o, r) = ask(&idx, &m.to_vec().expect("enc"), Transport::Udp, 0);
        assert!(matches!(
            o,
            Outcome::Reply {
                rcode: Rcode::BadVers,
                ..
            }
        ));
        // 16 is both BADVERS and BADSIG; hickory names it the latter.
        assert_eq!(u16::from(r.response_code), 16);
    }

    #[test]
    fn keys_match_the_index() {
        assert_eq!(relative_wire("a.B").expect("k"), b"\x01a\x01b".to_vec());
    }
}
