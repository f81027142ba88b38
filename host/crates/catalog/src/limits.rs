//! What a record may contain, checked where records enter the system (local discovery)
//! with the same limits the gossip decoder applies, so that a record we announce can
//! always be decoded by every peer: one bad item is refused on its own, at its source,
//! instead of breaking every exchange that carries it.

use super::model::Service;

/// Most bytes in any string field (the gossip decoder refuses longer strings).
pub const MAX_FIELD_BYTES: usize = 4096;
/// Most ports on one record (the gossip decoder refuses more).
pub const MAX_PORTS: usize = 1024;

/// Why a record was refused; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Checks a record against the wire limits: every string at most [`MAX_FIELD_BYTES`]
/// and free of control characters (they would end a line of a proxy config or a log),
/// at most [`MAX_PORTS`] ports, an ID, a name and a hostname present.
pub fn check_record(s: &Service) -> Result<(), RecordError> {
    for (field, value, required) in [
        ("ID", s.id.as_str(), true),
        ("Name", &s.name, true),
        ("Hostname", &s.hostname, true),
        ("Image", &s.image, false),
        ("ProxyMode", &s.proxy_mode, false),
    ] {
        check_str(field, value, required)?;
    }
    if s.ports.len() > MAX_PORTS {
        return Err(RecordError(format!(
            "{} ports (at most {MAX_PORTS})",
            s.ports.len()
        )));
    }
    for (i, p) in s.ports.iter().enumerate() {
        check_str(&format!("Ports[{i}].IP"), &p.ip, false)?;
    }
    Ok(())
}

fn check_str(field: &str, value: &str, required: bool) -> Result<(), RecordError> {
    if required && value.is_empty() {
        return Err(RecordError(format!("{field} is empty")));
    }
    if value.len() > MAX_FIELD_BYTES {
        return Err(RecordError(format!(
            "{field} is {} bytes long (at most {MAX_FIELD_BYTES})",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(RecordError(format!(
            "{field} contains the control character {c:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Port;

    fn ok() -> Service {
        Service {
            id: "abc".into(),
            name: "web".into(),
            hostname: "h1".into(),
            ports: vec![Port {
                port: 80,
                ip: "10.0.0.1".into(),
                ..Port::default()
            }],
            ..Service::default()
        }
    }

    #[test]
    fn a_normal_record_passes() {
        assert_eq!(check_record(&ok()), Ok(()));
    }

    #[test]
    fn long_strings_are_refused_at_the_decoders_limit() {
        let mut s = ok();
        s.name = "n".repeat(MAX_FIELD_BYTES);
        assert_eq!(check_record(&s), Ok(()));
        s.name.push('n');
        let e = check_record(&s).expect_err("too long");
        assert!(e.0.contains("Name") && e.0.contains("4097"), "{e}");
        let mut s = ok();
        s.ports[0].ip = "1".repeat(5000);
        assert!(check_record(&s).expect_err("ip").0.contains("Ports[0].IP"));
    }

    #[test]
    fn control_characters_missing_fields_and_port_floods_are_refused() {
        let mut s = ok();
        s.id = "a\nserver evil 1.2.3.4:80".into();
        assert!(check_record(&s).expect_err("newline").0.contains("ID"));
        let mut s = ok();
        s.name.clear();
        assert!(
            check_record(&s)
                .expect_err("empty")
                .0
                .contains("Name is empty")
        );
        let mut s = ok();
        s.ports = vec![Port::default(); MAX_PORTS + 1];
        assert!(check_record(&s).expect_err("ports").0.contains("ports"));
    }
}
