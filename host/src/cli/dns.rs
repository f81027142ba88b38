//! `sidecar dns lookup NAME [TYPE]`: one query to the DNS interface, printed like dig's
//! sections. Over UDP, retried over TCP when the answer is truncated. Exit 0 on
//! NOERROR, 1 on any other response code, 2 when no answer came.

use super::DnsLookupArgs;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(args: DnsLookupArgs) -> anyhow::Result<ExitCode> {
    let server: SocketAddr = match &args.server {
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("--server {s:?} is not ip:port"))?,
        None => crate::config::dns::lookup_addr_from_process()?,
    };
    let rtype = RecordType::from_str(&args.rtype.to_ascii_uppercase())
        .map_err(|_| anyhow::anyhow!("unknown record type {:?}", args.rtype))?;
    let mut name = Name::from_str(&args.name)
        .map_err(|e| anyhow::anyhow!("{:?} is not a DNS name: {e}", args.name))?;
    name.set_fqdn(true);
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name, rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let query = msg.to_vec()?;

    let started = Instant::now();
    let mut transport = if args.tcp { "tcp" } else { "udp" };
    let result = if args.tcp {
        over_tcp(server, &query)
    } else {
        over_udp(server, &query).and_then(|r| {
            if r.truncation {
                transport = "tcp (udp answer truncated)";
                over_tcp(server, &query)
            } else {
                Ok(r)
            }
        })
    };
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sidecar: no answer from {server}: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    print!("{}", render(&answer, server, transport, started.elapsed()));
    Ok(if answer.response_code == ResponseCode::NoError {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(bytes: &[u8], query: &[u8]) -> anyhow::Result<Message> {
    let m = Message::from_vec(bytes).map_err(|e| anyhow::anyhow!("unreadable answer: {e}"))?;
    if bytes.len() < 2 || bytes[..2] != query[..2] {
        anyhow::bail!("answer to another query");
    }
    Ok(m)
}

fn over_udp(server: SocketAddr, query: &[u8]) -> anyhow::Result<Message> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let sock = UdpSocket::bind(local)?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.send(query)?;
    let mut buf = vec![0u8; u16::MAX as usize];
    let n = sock.recv(&mut buf)?;
    check(&buf[..n], query)
}

fn over_tcp(server: SocketAddr, query: &[u8]) -> anyhow::Result<Message> {
    let mut s = TcpStream::connect_timeout(&server, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    let len = u16::try_from(query.len())?;
    let mut msg = len.to_be_bytes().to_vec();
    msg.extend_from_slice(query);
    s.write_all(&msg)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    check(&buf, query)
}

fn render(m: &Message, server: SocketAddr, transport: &str, took: Duration) -> String {
    let f = m.metadata;
    let flags: Vec<&str> = [
        ("qr", true),
        ("aa", f.authoritative),
        ("tc", f.truncation),
        ("rd", f.recursion_desired),
        ("ra", f.recursion_available),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect();
    let mut out = format!(
        ";; {}  flags: {}  answers: {}  (from {server} over {transport} in {:.1} ms)\n",
        rcode_name(f.response_code),
        flags.join(" "),
        m.answers.len(),
        took.as_secs_f64() * 1000.0
    );
    for (title, records) in [
        ("ANSWER", &m.answers),
        ("AUTHORITY", &m.authorities),
        ("ADDITIONAL", &m.additionals),
    ] {
        if records.is_empty() {
            continue;
        }
        out.push_str(&format!(";; {title}\n"));
        for r in records.iter() {
            out.push_str(&line(r));
        }
    }
    out
}

fn line(r: &Record) -> String {
    format!("{r}\n")
}

/// dig's names for response codes.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::A;

    #[test]
    fn renders_status_flags_and_sections() {
        let mut m = Message::response(1, hickory_proto::op::OpCode::Query);
        m.metadata.authoritative = true;
        m.add_answer(Record::from_rdata(
            Name::from_str("web.service.sidecar.local.").expect("n"),
            0,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        let text = render(
            &m,
            "127.0.0.1:8600".parse().expect("a"),
            "udp",
            Duration::from_millis(1),
        );
        assert!(
            text.starts_with(";; NOERROR  flags: qr aa  answers: 1"),
            "{text}"
        );
        assert!(
            text.contains(";; ANSWER\nweb.service.sidecar.local. 0 IN A 10.0.0.1\n"),
            "{text}"
        );
    }
}
