//! Compact binary form of catalog records (about a third of Sidecar's JSON).

use super::codec::{Reader, WireError, Writer};
use sidecar_catalog::{Port, PortKind, Service, Status, Timestamp};

/// One record as gossip carries it: the member announcing it plus the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireRecord {
    pub announcer: String,
    pub service: Service,
}

const HOST_IS_ANNOUNCER: u8 = 1;
/// Most ports carry the same IP as the previous one (or none): elide the repeat.
const MAX_PORTS: usize = 1024;

fn put_time(w: &mut Writer, t: Timestamp) {
    let (secs, nanos) = t.to_parts();
    w.svarint(secs);
    w.varint(u64::from(nanos));
}

fn get_time(r: &mut Reader) -> Result<Timestamp, WireError> {
    let secs = r.svarint()?;
    let nanos = r.varint()?;
    if nanos >= 1_000_000_000 {
        return Err(WireError::Invalid);
    }
    Ok(Timestamp::from_parts(secs, nanos as u32))
}

pub fn put_record(w: &mut Writer, announcer: &str, s: &Service) {
    w.str(announcer);
    let flags = if s.hostname == announcer {
        HOST_IS_ANNOUNCER
    } else {
        0
    };
    w.u8(flags);
    w.str(&s.id);
    w.str(&s.name);
    w.str(&s.image);
    put_time(w, s.created);
    if flags & HOST_IS_ANNOUNCER == 0 {
        w.str(&s.hostname);
    }
    w.varint(s.ports.len() as u64);
    for p in &s.ports {
        w.u8(match p.kind {
            PortKind::Tcp => 0,
            PortKind::Udp => 1,
        });
        w.varint(u64::from(p.port));
        w.varint(u64::from(p.service_port));
        w.str(&p.ip);
    }
    put_time(w, s.updated);
    w.str(&s.proxy_mode);
    w.u8(s.status.code());
}

fn get_u16(r: &mut Reader) -> Result<u16, WireError> {
    u16::try_from(r.varint()?).map_err(|_| WireError::Invalid)
}

pub fn get_record(r: &mut Reader) -> Result<WireRecord, WireError> {
    let announcer = r.string()?;
    let flags = r.u8()?;
    if flags & !HOST_IS_ANNOUNCER != 0 {
        return Err(WireError::Invalid);
    }
    let id = r.string()?;
    let name = r.string()?;
    let image = r.string()?;
    let created = get_time(r)?;
    let hostname = if flags & HOST_IS_ANNOUNCER != 0 {
        announcer.clone()
    } else {
        r.string()?
    };
    let n = r.count(4)?;
    if n > MAX_PORTS {
        return Err(WireError::TooLong(n as u64));
    }
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = match r.u8()? {
            0 => PortKind::Tcp,
            1 => PortKind::Udp,
            t => return Err(WireError::Tag(t)),
        };
        let port = get_u16(r)?;
        let service_port = get_u16(r)?;
        let ip = r.string()?;
        ports.push(Port {
            kind,
            port,
            service_port,
            ip,
        });
    }
    let updated = get_time(r)?;
    let proxy_mode = r.string()?;
    let status = Status::from_code(i64::from(r.u8()?)).ok_or(WireError::Invalid)?;
    Ok(WireRecord {
        announcer,
        service: Service {
            id,
            name,
            image,
            created,
            hostname,
            ports,
            updated,
            proxy_mode,
            status,
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(host: &str, id: &str) -> Service {
        Service {
            id: id.into(),
            name: "web".into(),
            image: "example.com/web:1.2".into(),
            created: Timestamp::from_parts(1_700_000_000, 0),
            hostname: host.into(),
            ports: vec![Port {
                kind: PortKind::Tcp,
                port: 31355,
                service_port: 17010,
                ip: "192.168.77.13".into(),
            }],
            updated: Timestamp::from_parts(1_714_557_605, 123_456_789),
            proxy_mode: "http".into(),
            status: Status::Alive,
        }
    }

    #[test]
    fn records_round_trip_with_nanoseconds_and_third_party_hosts() {
        for (announcer, host) in [("h1", "h1"), ("h1", "legacy-db")] {
            let s = sample(host, "88862023487f");
            let mut w = Writer::new();
            put_record(&mut w, announcer, &s);
            let got = get_record(&mut Reader::new(&w.buf)).expect("decodes");
            assert_eq!(got.announcer, announcer);
            assert_eq!(got.service, s);
            let json = serde_json::to_vec(&s).expect("json");
            assert!(
                w.buf.len() * 2 < json.len(),
                "{} vs {}",
                w.buf.len(),
                json.len()
            );
        }
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let mut w = Writer::new();
        put_record(&mut w, "h1", &sample("h1", "x"));
        for cut in 0..w.buf.len() {
            assert!(get_record(&mut Reader::new(&w.buf[..cut])).is_err());
        }
    }
}
