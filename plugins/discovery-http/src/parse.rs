//! Sidecar's static.json format -> `discovered` records.

use serde_json::{Map, Value};
use sidecar_plugin_sdk::discovery_source::{CheckSpec, Discovered};
use sidecar_plugin_sdk::types::{Port, PortKind, Service, ServiceStatus, Timestamp};
use std::collections::HashMap;

fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{key}: expected a string, got {other}")),
    }
}

fn number(map: &Map<String, Value>, key: &str) -> Result<u16, String> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| format!("{key}: {n} is not a port number")),
        Some(other) => Err(format!("{key}: expected a number, got {other}")),
    }
}

/// Stable 12-hex-digit ID (FNV-1a, 64 bit).
fn stable_id(identity: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

const ZERO: Timestamp = Timestamp {
    seconds: 0,
    nanoseconds: 0,
};

pub fn targets(text: &str) -> Result<Vec<Discovered>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let items = match doc {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => return Err("expected a JSON array of targets".into()),
    };
    let mut ranks: HashMap<String, usize> = HashMap::new();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| target(item, &mut ranks).map_err(|e| format!("target {i}: {e}")))
        .collect()
}

fn target(item: &Value, ranks: &mut HashMap<String, usize>) -> Result<Discovered, String> {
    let map = item.as_object().ok_or("expected an object")?;
    let svc = field(map, "Service")
        .and_then(Value::as_object)
        .ok_or("missing Service object")?;
    let name = string(svc, "Name")?;
    if name.is_empty() {
        return Err("Service.Name is empty".into());
    }
    let mut ports = Vec::new();
    if let Some(list) = field(svc, "Ports").and_then(Value::as_array) {
        for p in list {
            let p = p.as_object().ok_or("Ports: each port must be an object")?;
            let kind = match string(p, "Type")?.to_ascii_lowercase().as_str() {
                "" | "tcp" => PortKind::Tcp,
                "udp" => PortKind::Udp,
                other => return Err(format!("Type: {other:?} is not tcp or udp")),
            };
            ports.push(Port {
                kind,
                port: number(p, "Port")?,
                service_port: number(p, "ServicePort")?,
                ip: string(p, "IP")?,
            });
        }
    }
    let hostname = string(svc, "Hostname")?;
    let mut id = string(svc, "ID")?;
    if id.is_empty() {
        let mut identity = format!("{hostname}\0{name}");
        for p in &ports {
            identity.push_str(&format!(
                "\0{:?}/{}/{}/{}",
                p.kind, p.ip, p.port, p.service_port
            ));
        }
        let rank = ranks.entry(identity.clone()).or_insert(0);
        identity.push_str(&format!("\0{rank}"));
        *rank += 1;
        id = stable_id(&identity);
    }
    let check = match field(map, "Check").and_then(Value::as_object) {
        Some(c) => {
            let check_type = string(c, "Type")?;
            (!check_type.is_empty())
                .then(|| -> Result<CheckSpec, String> {
                    Ok(CheckSpec {
                        check_type,
                        args: string(c, "Args")?,
                    })
                })
                .transpose()?
        }
        None => None,
    };
    let listen_port = match field(map, "ListenPort") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|p| p > 0) => Some(
            n.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("ListenPort: {n} is not a port number"))?,
        ),
        _ => None,
    };
    Ok(Discovered {
        service: Service {
            id,
            name,
            image: string(svc, "Image")?,
            created: ZERO,
            hostname,
            ports,
            updated: ZERO,
            proxy_mode: string(svc, "ProxyMode")?,
            status: ServiceStatus::Unknown,
        },
        check,
        listen_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_static_format() {
        let t = targets(
            r#"[{"Service":{"Name":"db","Image":"pg:16","Ports":[{"Type":"tcp","Port":5432,"ServicePort":5432}]},
                 "Check":{"Type":"External","Args":"pg_isready"},"ListenPort":9000},
                {"service":{"name":"db","ports":[{"port":5432,"serviceport":5432}]}}]"#,
        )
        .expect("parses");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].service.name, "db");
        assert_eq!(t[0].service.ports[0].port, 5432);
        assert_eq!(
            t[0].check.as_ref().map(|c| c.check_type.as_str()),
            Some("External")
        );
        assert_eq!(t[0].listen_port, Some(9000));
        assert_eq!(t[0].service.id.len(), 12);
        assert_ne!(
            t[0].service.id, t[1].service.id,
            "identical targets get distinct IDs"
        );
        let again = targets(r#"[{"Service":{"Name":"db","Image":"x","Ports":[{"Type":"tcp","Port":5432,"ServicePort":5432}]}}]"#)
            .expect("parses");
        assert_eq!(again[0].service.id, t[0].service.id, "IDs are stable");
    }

    #[test]
    fn errors_name_the_target() {
        assert!(targets("[{").is_err());
        let e = targets(r#"[{"Service":{"Name":"a"}},{"Service":{}}]"#).expect_err("no name");
        assert!(e.contains("target 1"), "{e}");
        let e =
            targets(r#"[{"Service":{"Name":"a","Ports":[{"Type":"sctp"}]}}]"#).expect_err("sctp");
        assert!(e.contains("sctp"), "{e}");
    }
}
