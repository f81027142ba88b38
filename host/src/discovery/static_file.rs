//! Static discovery: services listed in a JSON file (`STATIC_CONFIG_FILE`), in Sidecar's
//! format:
//!
//! ```json
//! [ { "Service": { "Name": "db", "Ports": [ { "Type": "tcp", "Port": 5432, "ServicePort": 5432 } ] },
//!     "Check": { "Type": "HttpGet", "Args": "http://:8080/health" },
//!     "ListenPort": 9999 } ]
//! ```
//!
//! Differences from Sidecar (see `docs/discovery.md`): the file is re-read when it
//! changes (Sidecar read it once); a broken file is reported and the last good set kept;
//! IDs are stable across restarts and re-reads (Sidecar drew random ones at every start,
//! so a restart looked like remove + add); an `ID` given in the file is used; an empty
//! `ProxyMode` means `http`; `Created` is when this process first saw the target.

use super::connect::{self, ProxyPorts, SidecarSpec};
use super::{LocalService, Origin, SourceHandle, listener_url};
use crate::health::composite;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sidecar_catalog::{Service, Timestamp};
use sidecar_plugin_host::CheckSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the file's metadata is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One target as written in the file, before host defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub service: Service,
    pub check: Option<CheckSpec>,
    pub listen_port: Option<u16>,
    /// `Connect.SidecarService`: register a sidecar proxy next to this service.
    pub connect: Option<SidecarSpec>,
}

/// Why a static file was refused. The message names the target and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A file's targets, and the items refused one by one (`target N: reason`).
#[derive(Debug, Default)]
pub struct Parsed {
    pub targets: Vec<Target>,
    pub refused: Vec<String>,
}

/// Parses the file's contents (Go's leniency: unknown keys ignored, keys matched
/// case-insensitively). A file that is not a JSON array fails whole; an item of the
/// array that is not a valid target is refused alone and the others are kept.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    // Targets are converted one at a time as the array is read, so a file of 10,000
    // services never exists as one JSON tree in memory.
    let mut de = serde_json::Deserializer::from_str(text);
    let targets = serde::Deserializer::deserialize_any(&mut de, TargetsVisitor)
        .and_then(|t| de.end().map(|_| t))
        .map_err(|e| {
            let msg = e.to_string();
            if e.is_data() {
                ParseError(msg)
            } else {
                ParseError(format!("invalid JSON: {msg}"))
            }
        })?;
    Ok(targets)
}

struct TargetsVisitor;

impl<'de> serde::de::Visitor<'de> for TargetsVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of targets")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Parsed, E> {
        Ok(Parsed::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let mut out = Parsed {
            targets: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
            refused: Vec::new(),
        };
        let mut i = 0;
        while let Some(item) = seq.next_element::<Value>()? {
            match parse_target(&item) {
                Ok(t) => out.targets.push(t),
                Err(e) => out.refused.push(format!("target {i}: {e}")),
            }
            i += 1;
        }
        Ok(out)
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_target(item: &Value) -> Result<Target, String> {
    let map = item.as_object().ok_or("expected an object")?;
    let service = match field(map, "Service") {
        Some(v @ Value::Object(_)) => {
            Service::from_json::<serde_json::Error>(v).map_err(|e| format!("Service: {e}"))?
        }
        Some(other) => return Err(format!("Service: expected an object, got {}", kind(other))),
        None => return Err("missing Service".into()),
    };
    if service.name.is_empty() {
        return Err("Service.Name is empty".into());
    }
    let mut checks: Vec<CheckSpec> = match field(map, "Check") {
        None | Some(Value::Null) => Vec::new(),
        Some(c) => parse_check(c)?.into_iter().collect(),
    };
    // Ours (Consul's `Checks`): every check must pass.
    match field(map, "Checks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for c in list {
                checks.extend(parse_check(c)?);
            }
        }
        Some(other) => return Err(format!("Checks: expected an array, got {}", kind(other))),
    }
    if checks.len() > composite::MAX_CHECKS {
        return Err(format!("Checks: at most {} checks", composite::MAX_CHECKS));
    }
    let check = match checks.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(CheckSpec {
            check_type: composite::ALL.into(),
            args: composite::args_for(many),
        }),
    };
    let connect = match field(map, "Connect") {
        None | Some(Value::Null) => None,
        Some(c) => connect::parse(c)?,
    };
    let listen_port = match field(map, "ListenPort") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let p = n
                .as_i64()
                .ok_or_else(|| format!("ListenPort: {n} is not an integer"))?;
            if p <= 0 {
                None
            } else {
                Some(
                    u16::try_from(p)
                        .map_err(|_| format!("ListenPort: {p} is not a port number"))?,
                )
            }
        }
        Some(other) => {
            return Err(format!(
                "ListenPort: expected a number, got {}",
                kind(other)
            ));
        }
    };
    Ok(Target {
        service,
        check,
        listen_port,
        connect,
    })
}

/// One `{"Type": ..., "Args": ...}` check; `None` for an empty type (Sidecar's default
/// check).
pub(super) fn parse_check(v: &Value) -> Result<Option<CheckSpec>, String> {
    let Value::Object(c) = v else {
        return Err(format!("Check: expected an object, got {}", kind(v)));
    };
    let s = |k: &str| -> Result<String, String> {
        match field(c, k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("Check.{k}: expected a string, got {}", kind(other))),
        }
    };
    let spec = CheckSpec {
        check_type: s("Type")?,
        args: s("Args")?,
    };
    Ok((!spec.check_type.is_empty()).then_some(spec))
}

/// Applies the host's defaults and assigns stable IDs.
///
/// The ID (when the file gives none) is 12 hex characters of a hash of hostname, name,
/// ports and the target's rank among identical targets: it survives restarts, re-reads
/// and reordering of unrelated targets.
///
/// A target with `Connect.SidecarService` also yields its sidecar proxy (see
/// [`connect`]); a proxy that cannot be registered (no free port, nothing to forward
/// to) is refused alone, with the reason in `refused`.
pub fn to_local(
    targets: Vec<Target>,
    me: &str,
    advertise_ip: &str,
    first_seen: &mut HashMap<String, Timestamp>,
    now: Timestamp,
    ports: &mut ProxyPorts,
    refused: &mut Vec<String>,
) -> Vec<LocalService> {
    let mut ranks: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(targets.len());
    let mut sidecars = Vec::new();
    for p in targets
        .iter()
        .filter_map(|t| t.connect.as_ref().and_then(|c| c.port))
    {
        ports.reserve(p);
    }
    for t in targets {
        let mut svc = t.service;
        if svc.hostname.is_empty() {
            svc.hostname = me.to_string();
        }
        for p in &mut svc.ports {
            if p.ip.is_empty() {
                p.ip = advertise_ip.to_string();
            }
        }
        if svc.proxy_mode.is_empty() {
            svc.proxy_mode = "http".to_string();
        }
        if svc.id.is_empty() {
            let mut identity = format!("{}\0{}", svc.hostname, svc.name);
            for p in &svc.ports {
                identity.push_str(&format!(
                    "\0{}/{}/{}/{}",
                    p.kind.as_str(),
                    p.ip,
                    p.port,
                    p.service_port
                ));
            }
            let rank = ranks.entry(identity.clone()).or_insert(0);
            identity.push_str(&format!("\0{rank}"));
            *rank += 1;
            svc.id = hex::encode(&Sha256::digest(identity.as_bytes())[..6]);
        }
        svc.created = *first_seen.entry(svc.id.clone()).or_insert(now);
        svc.updated = Timestamp::GO_ZERO;
        if let Some(spec) = t.connect {
            sidecars.push((svc.clone(), spec));
        }
        out.push(LocalService {
            listener: t.listen_port.map(|p| listener_url(advertise_ip, p)),
            check: t.check,
            check_from_container: false,
            service: svc,
            sidecar_proxy: None,
        });
    }
    // Proxies that had a port keep it: they choose first (a stable sort keeps the
    // file's order otherwise).
    sidecars.sort_by_key(|(parent, _)| {
        !ports
            .previous
            .contains_key(&format!("{}-sidecar-proxy", parent.id))
    });
    for (parent, spec) in sidecars {
        let id = format!("{}-sidecar-proxy", parent.id);
        let Some(port) = spec.port.or_else(|| ports.assign(&id)) else {
            refused.push(format!(
                "service {}: no free sidecar proxy port in {}-{} (SIDECAR_CONNECT_PORT_RANGE)",
                parent.id,
                ports.range.start(),
                ports.range.end()
            ));
            continue;
        };
        match connect::register(&parent, &spec, port, advertise_ip, first_seen, now) {
            Ok(proxy) => out.push(proxy),
            Err(e) => refused.push(format!("service {}: {e}", parent.id)),
        }
    }
    out
}

/// Watches the file and publishes its services; runs forever. A change of `rescan`
/// (SIGHUP) re-reads the file even if its size and time look unchanged.
pub async fn run(
    path: PathBuf,
    max_bytes: u64,
    connect_ports: std::ops::RangeInclusive<u16>,
    origin: Origin,
    handle: SourceHandle,
    mut rescan: tokio::sync::watch::Receiver<u64>,
) {
    let Origin {
        node: me,
        advertise_ip,
    } = origin;
    let mut seen: Option<(Option<SystemTime>, u64)> = None;
    let mut last_error_meta = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rescan_open = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = rescan.changed(), if rescan_open => {
                if r.is_err() {
                    rescan_open = false;
                    continue;
                }
                tracing::info!(file = %path.display(), "static discovery: re-reading (reload)");
                seen = None;
                last_error_meta = None;
            }
        }
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) => {
                if last_error_meta.is_none() {
                    handle.fail_first(format!("cannot read static file {}: {e}", path.display()));
                    last_error_meta = Some(None);
                }
                seen = None;
                continue;
            }
        };
        if seen == Some(meta) || last_error_meta == Some(Some(meta)) {
            continue;
        }
        match load(&path, max_bytes).await {
            Ok(Parsed {
                targets,
                mut refused,
            }) => {
                let n = targets.len();
                // Created of targets and ports of proxies seen before, from the last
                // published set.
                let current = handle.current();
                let current = current.iter().flat_map(|v| v.iter());
                let mut first_seen: HashMap<String, Timestamp> = current
                    .clone()
                    .map(|l| (l.service.id.clone(), l.service.created))
                    .collect();
                let previous_ports = current
                    .filter_map(|l| l.sidecar_proxy.as_ref())
                    .map(|p| (p.id.clone(), p.port))
                    .collect();
                let services = to_local(
                    targets,
                    &me,
                    &advertise_ip,
                    &mut first_seen,
                    Timestamp::now(),
                    &mut ProxyPorts::new(connect_ports.clone(), previous_ports),
                    &mut refused,
                );
                drop(first_seen);
                tracing::info!(file = %path.display(), services = n, refused = refused.len(), "static discovery: loaded");
                handle.publish_refusing(services, refused);
                crate::memory::trim_heap();
                seen = Some(meta);
                last_error_meta = None;
            }
            Err(e) => {
                handle.fail_first(format!("static file {}: {e}", path.display()));
                last_error_meta = Some(Some(meta));
                seen = None;
            }
        }
    }
}

/// Reads at most `max_bytes` (a file that grows while we read is cut there and refused).
async fn load(path: &Path, max_bytes: u64) -> Result<Parsed, ParseError> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ParseError(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ParseError(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(ParseError(format!(
            "larger than SIDECAR_STATIC_MAX_BYTES ({max_bytes} bytes)"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| ParseError(format!("not UTF-8: {e}")))?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::PortKind;

    const SIDECAR_EXAMPLE: &str = r#"[
      {
        "Service": {
          "Name": "some_service",
          "Image": "bb6268ff91dc42a51f51db53846f72102ed9ff3f",
          "Ports": [ { "Type": "tcp", "Port": 10234, "ServicePort": 9999 } ],
          "ProxyMode": "http"
        },
        "ListenPort": 9999,
        "Check": { "Type": "HttpGet", "Args": "http://:10234/" }
      },
      { "service": { "name": "legacy-db", "hostname": "db1", "ports": [{"port": 5432, "ip": "10.1.1.1"}] } }
    ]"#;

    fn load_example() -> Vec<LocalService> {
        let parsed = parse(SIDECAR_EXAMPLE).expect("parses");
        assert!(parsed.refused.is_empty());
        to_local(
            parsed.targets,
            "me",
            "10.0.0.5",
            &mut HashMap::new(),
            Timestamp::from_unix_secs(1),
            &mut ProxyPorts::default(),
            &mut Vec::new(),
        )
    }

    #[test]
    fn sidecar_format_with_host_defaults() {
        let s = load_example();
        assert_eq!(s.len(), 2);
        let a = &s[0];
        assert_eq!(a.service.name, "some_service");
        assert_eq!(a.service.hostname, "me");
        assert_eq!(a.service.ports[0].ip, "10.0.0.5");
        assert_eq!(a.service.ports[0].kind, PortKind::Tcp);
        assert_eq!(a.service.ports[0].service_port, 9999);
        assert_eq!(a.service.id.len(), 12);
        assert_eq!(a.service.created, Timestamp::from_unix_secs(1));
        assert_eq!(
            a.check,
            Some(CheckSpec {
                check_type: "HttpGet".into(),
                args: "http://:10234/".into()
            })
        );
        assert_eq!(
            a.listener.as_deref(),
            Some("http://10.0.0.5:9999/sidecar/update")
        );
        let b = &s[1];
        assert_eq!(b.service.hostname, "db1", "hostname override kept");
        assert_eq!(b.service.ports[0].ip, "10.1.1.1", "given IP kept");
        assert_eq!(
            b.service.proxy_mode, "http",
            "empty ProxyMode defaults to http"
        );
        assert_eq!(b.check, None);
    }

    #[test]
    fn ids_are_stable_and_unique() {
        let a = load_example();
        let b = load_example();
        assert_eq!(a[0].service.id, b[0].service.id);
        let twice = format!(
            "[{x},{x}]",
            x = r#"{"Service":{"Name":"w","Ports":[{"Port":1}]}}"#
        );
        let s = to_local(
            parse(&twice).expect("ok").targets,
            "me",
            "ip",
            &mut HashMap::new(),
            Timestamp::UNIX_EPOCH,
            &mut ProxyPorts::default(),
            &mut Vec::new(),
        );
        assert_ne!(s[0].service.id, s[1].service.id);
        let given = r#"[{"Service":{"ID":"mine","Name":"w"}}]"#;
        let s = to_local(
            parse(given).expect("ok").targets,
            "me",
            "ip",
            &mut HashMap::new(),
            Timestamp::UNIX_EPOCH,
            &mut ProxyPorts::default(),
            &mut Vec::new(),
        );
        assert_eq!(s[0].service.id, "mine");
    }

    #[test]
    fn broken_files_say_why() {
        let e = parse(r#"[{"Service":{"Name":"a"}},]"#).expect_err("trailing comma");
        assert!(e.0.contains("invalid JSON"), "{e}");
        let e = parse(r#"{"Service":{}}"#).expect_err("not an array");
        assert!(e.0.contains("array"), "{e}");
    }

    #[test]
    fn a_bad_item_is_refused_alone() {
        let p = parse(
            r#"[{"Service":{"Name":"a","Ports":[{"Port":"x"}]}},
                {"Service":{"Name":"good"}},
                {"Service":{"Image":"x"}}]"#,
        )
        .expect("the file parses");
        let names: Vec<_> = p.targets.iter().map(|t| t.service.name.as_str()).collect();
        assert_eq!(names, ["good"]);
        assert_eq!(p.refused.len(), 2);
        assert!(p.refused[0].starts_with("target 0") && p.refused[0].contains("Port"));
        assert!(p.refused[1].starts_with("target 2") && p.refused[1].contains("Name"));
    }

    #[tokio::test]
    async fn a_file_over_the_size_limit_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("static.json");
        std::fs::write(&path, r#"[{"Service":{"Name":"a"}}]"#).expect("write");
        assert_eq!(load(&path, 1024).await.expect("small").targets.len(), 1);
        let e = load(&path, 10).await.expect_err("too big");
        assert!(e.0.contains("SIDECAR_STATIC_MAX_BYTES"), "{e}");
    }
}
