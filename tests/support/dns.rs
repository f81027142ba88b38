//! A minimal DNS client for the DNS tests and benchmark: builds queries byte by byte
//! (so a test can also build broken ones) and reads the parts of a response they check.
//! Also locates the Go `sidecar-dns` binary the conformance test and the benchmark run
//! beside ours.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

pub const A: u16 = 1;
pub const TXT: u16 = 16;
pub const SRV: u16 = 33;

/// A query for `name` (dotted, no trailing dot needed) of `qtype`, class IN, with RD and,
/// when `edns` is given, an OPT record advertising that UDP size.
pub fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    let ar: u16 = u16::from(edns.is_some());
    for count in [1u16, 0, 0, ar] {
        q.extend_from_slice(&count.to_be_bytes());
    }
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        q.push(0);
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

/// The header fields of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub id: u16,
    pub is_response: bool,
    pub truncated: bool,
    pub rcode: u8,
    pub answers: u16,
}

pub fn head(resp: &[u8]) -> Option<Head> {
    if resp.len() < 12 {
        return None;
    }
    Some(Head {
        id: u16::from_be_bytes([resp[0], resp[1]]),
        is_response: resp[2] & 0x80 != 0,
        truncated: resp[2] & 0x02 != 0,
        rcode: resp[3] & 0x0f,
        answers: u16::from_be_bytes([resp[6], resp[7]]),
    })
}

/// True when `label` appears as a whole label somewhere in the response (case-insensitive).
pub fn has_label(resp: &[u8], label: &str) -> bool {
    let l = label.as_bytes();
    resp.windows(l.len() + 1)
        .any(|w| w[0] as usize == l.len() && w[1..].eq_ignore_ascii_case(l))
}

/// One UDP exchange; `None` on timeout.
pub fn ask_udp(server: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.connect(server).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    sock.send(packet).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The Go tools' folder beside the project (`../shared/tools/go-sidecar`), when present.
pub fn go_tools() -> Option<PathBuf> {
    let dir = crate::workspace_root().join("../shared/tools/go-sidecar");
    dir.join("sidecar-dns-562e888").exists().then_some(dir)
}

/// The `sidecar-dns` binary (relistan/sidecar-dns 562e888), when present.
pub fn sidecar_dns_bin() -> Option<PathBuf> {
    go_tools().map(|d| d.join("sidecar-dns-562e888"))
}

/// sidecar-dns's HTTP port, fixed at 0.0.0.0:7780: only one can run at a time.
pub const SIDECAR_DNS_HTTP_PORT: u16 = 7780;

/// Waits until nothing listens on sidecar-dns's fixed HTTP port (another test or
/// benchmark may be running one); false if it stays taken.
pub fn sidecar_dns_port_free(wait: Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if std::net::TcpListener::bind(("0.0.0.0", SIDECAR_DNS_HTTP_PORT)).is_ok() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
