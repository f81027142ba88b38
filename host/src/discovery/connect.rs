//! Consul-style sidecar registration in static.json: a target with
//! `"Connect": {"SidecarService": {...}}` also registers `<name>-sidecar-proxy`, a
//! service this host's proxy implements (a public listener that forwards to the parent,
//! and the upstream listeners the parent uses to reach other services).
//!
//! Consul's defaults, each overridable as in Consul: ID `<parent ID>-sidecar-proxy`
//! (fixed), name `<parent name>-sidecar-proxy`, a port from a configurable range
//! (21000-21255) that stays the same for the service, a `Tcp` check on that port and an
//! `Alias` check on the parent (both must pass; a `Check` or `Checks` given replaces
//! them), `Proxy.DestinationServiceName`/`ID` the parent's, `LocalServiceAddress`
//! 127.0.0.1 and `LocalServicePort` the parent's first port. Keys are matched ignoring
//! case and underscores, so Consul's `sidecar_service`/`local_bind_port` spelling works.

use super::LocalService;
use super::static_file::{kind, parse_check};
use crate::health::composite;
use serde_json::{Map, Value};
use sidecar_catalog::{Port, PortKind, Service, Timestamp};
use sidecar_plugin_host::{CheckSpec, SidecarProxy, Upstream};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// Consul's default range for sidecar proxy ports.
pub const DEFAULT_PORTS: RangeInclusive<u16> = 21000..=21255;

/// At most this many upstreams per proxy: each is a listener on every proxy reload.
pub const MAX_UPSTREAMS: usize = 64;

/// `SidecarService` as written, before defaults that need the parent's final ID.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SidecarSpec {
    pub name: Option<String>,
    pub port: Option<u16>,
    /// `Check`/`Checks` given: they replace the default checks.
    pub checks: Vec<CheckSpec>,
    pub destination_service_name: Option<String>,
    pub destination_service_id: Option<String>,
    pub local_service_address: Option<String>,
    pub local_service_port: Option<u16>,
    pub upstreams: Vec<Upstream>,
}

/// `map[key]`, ignoring case and underscores (`SidecarService` = `sidecar_service`).
fn loose<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    let norm = |k: &str| -> String {
        k.chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let want = norm(key);
    map.iter()
        .find(|(k, _)| norm(k) == want)
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{at}: expected an object, got {}", kind(v)))
}

fn text(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, String> {
    match loose(map, key) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= 255 => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(format!("{at}.{key}: {} bytes, at most 255", s.len())),
        Some(v) => Err(format!("{at}.{key}: expected a string, got {}", kind(v))),
    }
}

fn port(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u16>, String> {
    match loose(map, key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(0) => Ok(None),
            Some(p) => Ok(Some(p)),
            None => Err(format!("{at}.{key}: {n} is not a port number")),
        },
        Some(v) => Err(format!("{at}.{key}: expected a number, got {}", kind(v))),
    }
}

fn ip(value: Option<String>, key: &str) -> Result<Option<String>, String> {
    match value {
        Some(a) if a.parse::<IpAddr>().is_err() => {
            Err(format!("{key}: {a:?} is not an IP address"))
        }
        other => Ok(other),
    }
}

/// Parses `Connect` (the value of a target's `Connect` key). `Ok(None)`: no sidecar.
pub fn parse(connect: &Value) -> Result<Option<SidecarSpec>, String> {
    let connect = object(connect, "Connect")?;
    if let Some(v) = loose(connect, "Native").filter(|v| v.as_bool() == Some(true)) {
        let _ = v;
        return Err("Connect.Native is not supported (no Connect-native services)".into());
    }
    let Some(sidecar) = loose(connect, "SidecarService") else {
        return Ok(None);
    };
    let at = "Connect.SidecarService";
    let sidecar = object(sidecar, at)?;
    // Consul's limitations: the ID is the parent's plus a suffix, so the agent can
    // remove the proxy with its parent; the kind is fixed; no nesting.
    if loose(sidecar, "ID").is_some() {
        return Err(format!(
            "{at}.ID cannot be set: a sidecar proxy's ID is <parent ID>-sidecar-proxy"
        ));
    }
    if let Some(k) = loose(sidecar, "Kind")
        && k.as_str() != Some("connect-proxy")
    {
        return Err(format!("{at}.Kind: only \"connect-proxy\" is possible"));
    }
    if loose(sidecar, "Connect").is_some() {
        return Err(format!("{at}.Connect: sidecar services cannot be nested"));
    }
    let mut checks = Vec::new();
    if let Some(c) = loose(sidecar, "Check") {
        checks.extend(parse_check(c).map_err(|e| format!("{at}.{e}"))?);
    }
    if let Some(list) = loose(sidecar, "Checks") {
        let list = list
            .as_array()
            .ok_or_else(|| format!("{at}.Checks: expected an array, got {}", kind(list)))?;
        for c in list {
            checks.extend(parse_check(c).map_err(|e| format!("{at}.{e}"))?);
        }
    }
    if checks.len() > composite::MAX_CHECKS {
        return Err(format!(
            "{at}.Checks: at most {} checks",
            composite::MAX_CHECKS
        ));
    }
    let mut spec = SidecarSpec {
        name: text(sidecar, "Name", at)?.filter(|n| !n.is_empty()),
        port: port(sidecar, "Port", at)?,
        checks,
        ..SidecarSpec::default()
    };
    if let Some(proxy) = loose(sidecar, "Proxy") {
        let at = "Connect.SidecarService.Proxy";
        let proxy = object(proxy, at)?;
        spec.destination_service_name = text(proxy, "DestinationServiceName", at)?;
        spec.destination_service_id = text(proxy, "DestinationServiceID", at)?;
        spec.local_service_address = ip(
            text(proxy, "LocalServiceAddress", at)?,
            &format!("{at}.LocalServiceAddress"),
        )?;
        spec.local_service_port = port(proxy, "LocalServicePort", at)?;
        if let Some(list) = loose(proxy, "Upstreams") {
            let list = list
                .as_array()
                .ok_or_else(|| format!("{at}.Upstreams: expected an array, got {}", kind(list)))?;
            if list.len() > MAX_UPSTREAMS {
                return Err(format!("{at}.Upstreams: at most {MAX_UPSTREAMS}"));
            }
            for (i, u) in list.iter().enumerate() {
                spec.upstreams
                    .push(upstream(u, &format!("{at}.Upstreams[{i}]"))?);
            }
        }
    }
    let mut binds = BTreeSet::new();
    for u in &spec.upstreams {
        if !binds.insert((u.local_bind_address.as_str(), u.local_bind_port)) {
            return Err(format!(
                "Connect.SidecarService.Proxy.Upstreams: two upstreams bind {}:{}",
                u.local_bind_address, u.local_bind_port
            ));
        }
    }
    Ok(Some(spec))
}

fn upstream(v: &Value, at: &str) -> Result<Upstream, String> {
    let u = object(v, at)?;
    if let Some(t) = text(u, "DestinationType", at)?
        && t != "service"
    {
        return Err(format!(
            "{at}.DestinationType: only \"service\" is supported, not {t:?}"
        ));
    }
    let destination_name = text(u, "DestinationName", at)?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{at}: DestinationName is required"))?;
    let local_bind_port =
        port(u, "LocalBindPort", at)?.ok_or_else(|| format!("{at}: LocalBindPort is required"))?;
    Ok(Upstream {
        destination_name,
        destination_port: port(u, "DestinationPort", at)?.unwrap_or(0),
        local_bind_address: ip(
            text(u, "LocalBindAddress", at)?,
            &format!("{at}.LocalBindAddress"),
        )?
        .unwrap_or_else(|| "127.0.0.1".into()),
        local_bind_port,
    })
}

/// Sidecar proxy ports: a configured range, and the ports proxies had before, so a
/// proxy keeps its port across re-reads of the file while the range has room.
#[derive(Debug, Clone)]
pub struct ProxyPorts {
    pub range: RangeInclusive<u16>,
    /// Proxy ID -> port, from the previously published set.
    pub previous: HashMap<String, u16>,
    taken: BTreeSet<u16>,
}

impl Default for ProxyPorts {
    fn default() -> Self {
        ProxyPorts::new(DEFAULT_PORTS, HashMap::new())
    }
}

impl ProxyPorts {
    pub fn new(range: RangeInclusive<u16>, previous: HashMap<String, u16>) -> Self {
        ProxyPorts {
            range,
            previous,
            taken: BTreeSet::new(),
        }
    }

    /// Marks ports given explicitly in the file, before any is assigned.
    pub fn reserve(&mut self, port: u16) {
        self.taken.insert(port);
    }

    /// A port for the proxy `id`: its previous one if still free, else the first free
    /// port from a place in the range derived from the ID (so the same service gets the
    /// same port after a restart unless another took it first).
    pub fn assign(&mut self, id: &str) -> Option<u16> {
        if let Some(&p) = self.previous.get(id)
            && self.range.contains(&p)
            && self.taken.insert(p)
        {
            return Some(p);
        }
        let (start, end) = (*self.range.start(), *self.range.end());
        if end < start {
            return None;
        }
        let len = u32::from(end - start) + 1;
        let offset = fnv1a(id) % len;
        (0..len)
            .map(|i| start as u32 + (offset + i) % len)
            .filter_map(|p| u16::try_from(p).ok())
            .find(|p| self.taken.insert(*p))
    }
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The proxy service for `parent` (its ID and hostname final) and what the local proxy
/// must open for it.
pub fn register(
    parent: &Service,
    spec: &SidecarSpec,
    port: u16,
    advertise_ip: &str,
    created: &mut HashMap<String, Timestamp>,
    now: Timestamp,
) -> Result<LocalService, String> {
    let id = format!("{}-sidecar-proxy", parent.id);
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-sidecar-proxy", parent.name));
    let local_service_port = spec
        .local_service_port
        .or_else(|| parent.ports.first().map(|p| p.port).filter(|p| *p != 0))
        .ok_or_else(|| {
            "Connect.SidecarService: the parent has no port; set Proxy.LocalServicePort".to_string()
        })?;
    let checks = if spec.checks.is_empty() {
        let address = if advertise_ip.contains(':') {
            format!("[{advertise_ip}]:{port}")
        } else {
            format!("{advertise_ip}:{port}")
        };
        vec![
            CheckSpec {
                check_type: "Tcp".into(),
                args: address,
            },
            CheckSpec {
                check_type: "Alias".into(),
                args: parent.id.clone(),
            },
        ]
    } else {
        spec.checks.clone()
    };
    let check = match checks.as_slice() {
        [one] => one.clone(),
        many => CheckSpec {
            check_type: composite::ALL.into(),
            args: composite::args_for(many),
        },
    };
    let service = Service {
        id: id.clone(),
        name: name.clone(),
        image: parent.image.clone(),
        created: *created.entry(id.clone()).or_insert(now),
        hostname: parent.hostname.clone(),
        ports: vec![Port {
            kind: PortKind::Tcp,
            port,
            // Reached through its address, not through every host's proxy.
            service_port: 0,
            ip: advertise_ip.to_string(),
        }],
        updated: Timestamp::GO_ZERO,
        proxy_mode: "tcp".into(),
        status: sidecar_catalog::Status::Unknown,
    };
    let proxy = SidecarProxy {
        id,
        name,
        address: advertise_ip.to_string(),
        port,
        destination_service_name: spec
            .destination_service_name
            .clone()
            .unwrap_or_else(|| parent.name.clone()),
        destination_service_id: spec
            .destination_service_id
            .clone()
            .unwrap_or_else(|| parent.id.clone()),
        local_service_address: spec
            .local_service_address
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        local_service_port,
        upstreams: spec.upstreams.clone(),
    };
    Ok(LocalService {
        service,
        check: Some(check),
        check_from_container: false,
        listener: None,
        sidecar_proxy: Some(proxy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Option<SidecarSpec>, String> {
        parse(&serde_json::from_str(json).expect("json"))
    }

    #[test]
    fn consul_spelling_and_ours_both_parse() {
        let consul = spec(
            r#"{"sidecar_service": {"proxy": {"upstreams": [
                {"destination_name": "db", "local_bind_port": 9191}]}}}"#,
        )
        .expect("valid")
        .expect("a sidecar");
        let ours = spec(
            r#"{"SidecarService": {"Proxy": {"Upstreams": [
                {"DestinationName": "db", "LocalBindPort": 9191, "LocalBindAddress": "127.0.0.1"}]}}}"#,
        )
        .expect("valid")
        .expect("a sidecar");
        assert_eq!(consul, ours);
        assert_eq!(
            consul.upstreams,
            [Upstream {
                destination_name: "db".into(),
                destination_port: 0,
                local_bind_address: "127.0.0.1".into(),
                local_bind_port: 9191,
            }]
        );
        assert_eq!(spec(r#"{"Native": false}"#).expect("valid"), None);
    }

    #[test]
    fn consul_limitations_are_errors_that_name_the_field() {
        for (json, says) in [
            (r#"{"SidecarService": {"ID": "x"}}"#, "ID cannot be set"),
            (r#"{"SidecarService": {"Kind": "typical"}}"#, "Kind"),
            (
                r#"{"SidecarService": {"Connect": {"SidecarService": {}}}}"#,
                "nested",
            ),
            (r#"{"Native": true}"#, "Native"),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [{"LocalBindPort": 1}]}}}"#,
                "DestinationName is required",
            ),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "db"}]}}}"#,
                "LocalBindPort is required",
            ),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "db", "LocalBindPort": 70000}]}}}"#,
                "not a port",
            ),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "db", "LocalBindPort": 1, "LocalBindAddress": "localhost\n"}]}}}"#,
                "not an IP",
            ),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [
                    {"DestinationName": "a", "LocalBindPort": 1}, {"DestinationName": "b", "LocalBindPort": 1}]}}}"#,
                "two upstreams bind",
            ),
            (
                r#"{"SidecarService": {"Proxy": {"Upstreams": [{"DestinationName": "q", "DestinationType": "prepared_query", "LocalBindPort": 1}]}}}"#,
                "DestinationType",
            ),
            (r#"{"SidecarService": []}"#, "expected an object"),
        ] {
            let e = spec(json).expect_err(json);
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    fn parent() -> Service {
        Service {
            id: "web-1".into(),
            name: "web".into(),
            hostname: "me".into(),
            ports: vec![Port {
                kind: PortKind::Tcp,
                port: 8080,
                service_port: 10300,
                ip: "10.0.0.5".into(),
            }],
            ..Service::default()
        }
    }

    #[test]
    fn the_minimal_registration_gets_consuls_defaults() {
        let spec = spec(r#"{"sidecar_service": {}}"#)
            .expect("valid")
            .expect("some");
        let l = register(
            &parent(),
            &spec,
            21007,
            "10.0.0.5",
            &mut HashMap::new(),
            Timestamp::UNIX_EPOCH,
        )
        .expect("registers");
        assert_eq!(l.service.id, "web-1-sidecar-proxy");
        assert_eq!(l.service.name, "web-sidecar-proxy");
        assert_eq!(l.service.ports[0].port, 21007);
        assert_eq!(l.service.ports[0].service_port, 0);
        let check = l.check.expect("a check");
        assert_eq!(check.check_type, "All");
        assert_eq!(
            composite::parse_args(&check.args).expect("args"),
            [
                CheckSpec {
                    check_type: "Tcp".into(),
                    args: "10.0.0.5:21007".into()
                },
                CheckSpec {
                    check_type: "Alias".into(),
                    args: "web-1".into()
                }
            ]
        );
        let proxy = l.sidecar_proxy.expect("a proxy");
        assert_eq!(
            (
                proxy.destination_service_name.as_str(),
                proxy.destination_service_id.as_str(),
                proxy.local_service_address.as_str(),
                proxy.local_service_port
            ),
            ("web", "web-1", "127.0.0.1", 8080)
        );
    }

    #[test]
    fn given_values_replace_the_defaults() {
        let spec = spec(
            r#"{"SidecarService": {"Name": "edge", "Port": 20000,
                "Check": {"Type": "Tcp", "Args": "127.0.0.1:20000"},
                "Proxy": {"LocalServiceAddress": "10.0.0.5", "LocalServicePort": 9000,
                          "DestinationServiceName": "web2"}}}"#,
        )
        .expect("valid")
        .expect("some");
        assert_eq!(spec.port, Some(20000));
        let l = register(
            &parent(),
            &spec,
            20000,
            "10.0.0.5",
            &mut HashMap::new(),
            Timestamp::UNIX_EPOCH,
        )
        .expect("registers");
        assert_eq!(l.service.name, "edge");
        assert_eq!(
            l.check.map(|c| c.check_type),
            Some("Tcp".into()),
            "one check given: only it"
        );
        let proxy = l.sidecar_proxy.expect("a proxy");
        assert_eq!(proxy.local_service_address, "10.0.0.5");
        assert_eq!(proxy.local_service_port, 9000);
        assert_eq!(proxy.destination_service_name, "web2");
        let portless = Service {
            ports: vec![],
            ..parent()
        };
        let e = register(
            &portless,
            &SidecarSpec::default(),
            1,
            "ip",
            &mut HashMap::new(),
            Timestamp::UNIX_EPOCH,
        )
        .expect_err("no port to forward to");
        assert!(e.contains("LocalServicePort"), "{e}");
    }

    #[test]
    fn ports_are_stable_per_service_and_unique() {
        let mut ports = ProxyPorts::new(21000..=21003, HashMap::new());
        let a = ports.assign("a-sidecar-proxy").expect("free");
        let b = ports.assign("b-sidecar-proxy").expect("free");
        assert_ne!(a, b);
        assert!((21000..=21003).contains(&a) && (21000..=21003).contains(&b));
        // Another read of the file: proxies that had a port are served first (see
        // `static_file::to_local`), then the others in file order.
        let previous = HashMap::from([("a-sidecar-proxy".to_string(), a)]);
        let mut again = ProxyPorts::new(21000..=21003, previous);
        assert_eq!(again.assign("a-sidecar-proxy"), Some(a), "a keeps its port");
        assert_eq!(again.assign("b-sidecar-proxy"), Some(b));
        // A fresh start gives the same ports (derived from the IDs).
        let mut fresh = ProxyPorts::new(21000..=21003, HashMap::new());
        assert_eq!(fresh.assign("a-sidecar-proxy"), Some(a));
        // An explicit port is never handed out; a full range says so.
        let mut full = ProxyPorts::new(21000..=21001, HashMap::new());
        full.reserve(21000);
        assert_eq!(full.assign("x"), Some(21001));
        assert_eq!(full.assign("y"), None);
    }
}
