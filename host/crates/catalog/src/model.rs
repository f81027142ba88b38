//! The catalog's records, with Sidecar's JSON field names, key order and types.
//!
//! Encoding follows Go's `encoding/json` as Sidecar uses it: struct keys in declaration
//! order, map keys sorted, integers for statuses and ports. Decoding is as lenient as
//! Go's: unknown keys are ignored, keys match case-insensitively when no exact match
//! exists, and missing keys take zero values (so a missing `Status` means ALIVE).

use super::time::Timestamp;
/// Persistent (structurally shared) maps: a copy of the whole catalog, which every
/// published snapshot is, costs O(1), and a change copies only the path to it.
pub use imbl::OrdMap;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Status of a service instance; the discriminant is Sidecar's wire code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Status {
    Alive = 0,
    Tombstone = 1,
    Unhealthy = 2,
    Unknown = 3,
    Draining = 4,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Alive,
        Status::Tombstone,
        Status::Unhealthy,
        Status::Unknown,
        Status::Draining,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Status> {
        Some(match code {
            0 => Status::Alive,
            1 => Status::Tombstone,
            2 => Status::Unhealthy,
            3 => Status::Unknown,
            4 => Status::Draining,
            _ => return None,
        })
    }

    /// Sidecar's `StatusString`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Alive => "Alive",
            Status::Tombstone => "Tombstone",
            Status::Unhealthy => "Unhealthy",
            Status::Unknown => "Unknown",
            Status::Draining => "Draining",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = i64::deserialize(d)?;
        Status::from_code(code)
            .ok_or_else(|| de::Error::custom(format!("unknown service status {code} (valid: 0-4)")))
    }
}

/// Transport of a port: Sidecar's `Type` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum PortKind {
    #[default]
    Tcp,
    Udp,
}

impl PortKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PortKind::Tcp => "tcp",
            PortKind::Udp => "udp",
        }
    }

    /// `tcp`/`udp` in any case. An empty type means tcp (Sidecar left it empty and then
    /// never proxied the port; static files that omit it mean tcp).
    pub fn parse(s: &str) -> Option<PortKind> {
        if s.is_empty() || s.eq_ignore_ascii_case("tcp") {
            Some(PortKind::Tcp)
        } else if s.eq_ignore_ascii_case("udp") {
            Some(PortKind::Udp)
        } else {
            None
        }
    }
}

impl Serialize for PortKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One reachable port of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Port {
    #[serde(rename = "Type")]
    pub kind: PortKind,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "ServicePort")]
    pub service_port: u16,
    #[serde(rename = "IP")]
    pub ip: String,
}

/// One service instance (`Service` in Sidecar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "Created")]
    pub created: Timestamp,
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Ports")]
    pub ports: Vec<Port>,
    #[serde(rename = "Updated")]
    pub updated: Timestamp,
    #[serde(rename = "ProxyMode")]
    pub proxy_mode: String,
    #[serde(rename = "Status")]
    pub status: Status,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            id: String::new(),
            name: String::new(),
            image: String::new(),
            created: Timestamp::GO_ZERO,
            hostname: String::new(),
            ports: Vec::new(),
            updated: Timestamp::GO_ZERO,
            proxy_mode: String::new(),
            status: Status::Alive,
        }
    }
}

impl Service {
    /// Sidecar's `Invalidates`: strictly newer `Updated`.
    pub fn invalidates(&self, other: &Service) -> bool {
        self.updated > other.updated
    }

    pub fn is_tombstone(&self) -> bool {
        self.status == Status::Tombstone
    }

    /// Sidecar's `Version()`: the part after the first `:` of the image, else the image.
    /// (Sidecar's quirk with registry ports is kept: `registry:5000/foo:1.2` -> `5000/foo`.)
    pub fn version(&self) -> &str {
        let mut parts = self.image.split(':');
        match (parts.next(), parts.next()) {
            (Some(_), Some(v)) => v,
            _ => &self.image,
        }
    }

    /// Sidecar's `ListenerName()`.
    pub fn listener_name(&self) -> String {
        format!("Service({}-{})", self.name, self.id)
    }

    /// The `Port` of the first port with this ServicePort and type.
    pub fn port_for_service_port(&self, service_port: u16, kind: PortKind) -> Option<u16> {
        self.ports
            .iter()
            .find(|p| p.service_port == service_port && p.kind == kind)
            .map(|p| p.port)
    }

    /// True when everything but `Updated` is equal: a re-stamp, not a change.
    pub fn same_content(&self, other: &Service) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.image == other.image
            && self.created == other.created
            && self.hostname == other.hostname
            && self.ports == other.ports
            && self.proxy_mode == other.proxy_mode
            && self.status == other.status
    }
}

/// All records of one host (`Server` in Sidecar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Server {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Services")]
    pub services: OrdMap<String, Service>,
    #[serde(rename = "LastUpdated")]
    pub last_updated: Timestamp,
    #[serde(rename = "LastChanged")]
    pub last_changed: Timestamp,
}

impl Server {
    pub fn new(name: impl Into<String>) -> Self {
        Server {
            name: name.into(),
            services: OrdMap::new(),
            last_updated: Timestamp::UNIX_EPOCH,
            last_changed: Timestamp::UNIX_EPOCH,
        }
    }

    pub fn has_live_records(&self) -> bool {
        self.services.values().any(|s| !s.is_tombstone())
    }
}

/// The whole catalog, as `/api/state.json` shows it (`ServicesState` in Sidecar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicesState {
    #[serde(rename = "Servers")]
    pub servers: OrdMap<String, Server>,
    #[serde(rename = "LastChanged")]
    pub last_changed: Timestamp,
    #[serde(rename = "ClusterName")]
    pub cluster_name: String,
    #[serde(rename = "Hostname")]
    pub hostname: String,
}

impl ServicesState {
    pub fn new(hostname: impl Into<String>, cluster_name: impl Into<String>) -> Self {
        ServicesState {
            servers: OrdMap::new(),
            last_changed: Timestamp::UNIX_EPOCH,
            cluster_name: cluster_name.into(),
            hostname: hostname.into(),
        }
    }

    pub fn get(&self, hostname: &str, id: &str) -> Option<&Service> {
        self.servers.get(hostname)?.services.get(id)
    }

    /// Every record, in catalog order (hosts sorted, IDs sorted).
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.servers.values().flat_map(|s| s.services.values())
    }

    pub fn len(&self) -> usize {
        self.servers.values().map(|s| s.services.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.values().all(|s| s.services.is_empty())
    }

    /// Service name -> instances (any status), each list sorted by `Updated` ascending:
    /// the shape of `/api/services.json` and of `/api/watch` documents.
    pub fn by_service(&self) -> BTreeMap<&str, Vec<&Service>> {
        let mut out: BTreeMap<&str, Vec<&Service>> = BTreeMap::new();
        for svc in self.services() {
            out.entry(svc.name.as_str()).or_default().push(svc);
        }
        for list in out.values_mut() {
            list.sort_by_key(|s| s.updated);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Lenient decoding (Go encoding/json semantics).
// ---------------------------------------------------------------------------------------

/// Looks a key up the way Go does: exact match first, then ASCII case-insensitive.
fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn err<E: de::Error>(what: &str, detail: impl fmt::Display) -> E {
    E::custom(format!("{what}: {detail}"))
}

fn get_string<E: de::Error>(map: &Map<String, Value>, key: &str) -> Result<String, E> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(err(key, format!("expected a string, got {other}"))),
    }
}

fn get_time<E: de::Error>(map: &Map<String, Value>, key: &str) -> Result<Timestamp, E> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(Timestamp::GO_ZERO),
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s).map_err(|e| err(key, e)),
        Some(other) => Err(err(
            key,
            format!("expected an RFC 3339 string, got {other}"),
        )),
    }
}

fn get_port_number<E: de::Error>(map: &Map<String, Value>, key: &str) -> Result<u16, E> {
    match field(map, key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| err(key, format!("{n} is not a port number (0-65535)"))),
        Some(other) => Err(err(key, format!("expected a number, got {other}"))),
    }
}

impl Port {
    fn from_json<E: de::Error>(v: &Value) -> Result<Port, E> {
        let map = v
            .as_object()
            .ok_or_else(|| err("Ports", "each port must be an object"))?;
        let kind_str = get_string::<E>(map, "Type")?;
        let kind = PortKind::parse(&kind_str)
            .ok_or_else(|| err("Type", format!("{kind_str:?} is not tcp or udp")))?;
        Ok(Port {
            kind,
            port: get_port_number(map, "Port")?,
            service_port: get_port_number(map, "ServicePort")?,
            ip: get_string(map, "IP")?,
        })
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Port::from_json(&Value::deserialize(d)?)
    }
}

impl Service {
    /// Decodes a Service from a JSON value with Go's leniency.
    pub fn from_json<E: de::Error>(v: &Value) -> Result<Service, E> {
        let map = v
            .as_object()
            .ok_or_else(|| err("Service", "expected a JSON object"))?;
        let ports = match field(map, "Ports") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(Port::from_json)
                .collect::<Result<Vec<_>, E>>()?,
            Some(other) => return Err(err("Ports", format!("expected an array, got {other}"))),
        };
        let status = match field(map, "Status") {
            None | Some(Value::Null) => Status::Alive,
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(Status::from_code)
                .ok_or_else(|| err("Status", format!("unknown status {n} (valid: 0-4)")))?,
            Some(other) => return Err(err("Status", format!("expected a number, got {other}"))),
        };
        Ok(Service {
            id: get_string(map, "ID")?,
            name: get_string(map, "Name")?,
            image: get_string(map, "Image")?,
            created: get_time(map, "Created")?,
            hostname: get_string(map, "Hostname")?,
            ports,
            updated: get_time(map, "Updated")?,
            proxy_mode: get_string(map, "ProxyMode")?,
            status,
        })
    }
}

impl<'de> Deserialize<'de> for Service {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Service::from_json(&Value::deserialize(d)?)
    }
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let map = v
            .as_object()
            .ok_or_else(|| err::<D::Error>("Server", "expected a JSON object"))?;
        let mut services = OrdMap::new();
        match field(map, "Services") {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (id, sv) in entries {
                    services.insert(id.clone(), Service::from_json::<D::Error>(sv)?);
                }
            }
            Some(other) => return Err(err("Services", format!("expected an object, got {other}"))),
        }
        Ok(Server {
            name: get_string(map, "Name")?,
            services,
            last_updated: get_time(map, "LastUpdated")?,
            last_changed: get_time(map, "LastChanged")?,
        })
    }
}

impl<'de> Deserialize<'de> for ServicesState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let map = v
            .as_object()
            .ok_or_else(|| err::<D::Error>("ServicesState", "expected a JSON object"))?;
        let mut servers = OrdMap::new();
        match field(map, "Servers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (name, sv) in entries {
                    let server: Server = serde_json::from_value(sv.clone())
                        .map_err(|e| err::<D::Error>("Servers", e))?;
                    servers.insert(name.clone(), server);
                }
            }
            Some(other) => return Err(err("Servers", format!("expected an object, got {other}"))),
        }
        Ok(ServicesState {
            servers,
            last_changed: get_time(map, "LastChanged")?,
            cluster_name: get_string(map, "ClusterName")?,
            hostname: get_string(map, "Hostname")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"ID":"88862023487f","Name":"sample-app","Image":"example.com/docker/fabulous-container:latest","Created":"2016-03-05T02:26:14Z","Hostname":"host1","Ports":[{"Type":"tcp","Port":31355,"ServicePort":17010,"IP":"192.168.77.13"}],"Updated":"2024-05-01T10:00:05.123456789Z","ProxyMode":"tcp","Status":0}"#;

    #[test]
    fn service_encodes_in_sidecar_key_order() {
        let svc: Service = serde_json::from_str(SAMPLE).expect("decodes");
        assert_eq!(serde_json::to_string(&svc).expect("encodes"), SAMPLE);
    }

    #[test]
    fn empty_state_matches_sidecar() {
        let st = ServicesState::new("chaucer", "default");
        assert_eq!(
            serde_json::to_string(&st).expect("encodes"),
            r#"{"Servers":{},"LastChanged":"1970-01-01T00:00:00Z","ClusterName":"default","Hostname":"chaucer"}"#
        );
    }

    #[test]
    fn state_round_trips_the_reference_example() {
        let doc = r#"{"Servers":{"chaucer":{"Name":"chaucer","Services":{"deadbeef123":{"ID":"deadbeef123","Name":"bocaccio","Image":"101deadbeef","Created":"2024-05-01T10:00:00Z","Hostname":"chaucer","Ports":[{"Type":"tcp","Port":9999,"ServicePort":10100,"IP":"127.0.0.1"}],"Updated":"2024-05-01T10:00:05.5Z","ProxyMode":"http","Status":0}},"LastUpdated":"2024-05-01T10:00:05.5Z","LastChanged":"2024-05-01T10:00:05.5Z"}},"LastChanged":"2024-05-01T10:00:05.5Z","ClusterName":"default","Hostname":"chaucer"}"#;
        let st: ServicesState = serde_json::from_str(doc).expect("decodes");
        assert_eq!(serde_json::to_string(&st).expect("encodes"), doc);
    }

    #[test]
    fn decoding_is_lenient_like_go() {
        let svc: Service =
            serde_json::from_str(r#"{"id":"abc","NAME":"web","ports":null,"Extra":1}"#)
                .expect("decodes");
        assert_eq!(svc.id, "abc");
        assert_eq!(svc.name, "web");
        assert_eq!(
            svc.status,
            Status::Alive,
            "missing Status is the zero value, ALIVE"
        );
        assert_eq!(svc.created, Timestamp::GO_ZERO);
        assert!(svc.ports.is_empty());
        let svc: Service = serde_json::from_str(r#"{"Ports":[{"Port":80}]}"#).expect("decodes");
        assert_eq!(
            svc.ports[0].kind,
            PortKind::Tcp,
            "missing port type means tcp"
        );
    }

    #[test]
    fn decoding_rejects_nonsense_with_the_field_name() {
        let e = serde_json::from_str::<Service>(r#"{"Status":9}"#).expect_err("bad status");
        assert!(e.to_string().contains("Status"), "{e}");
        let e =
            serde_json::from_str::<Service>(r#"{"Ports":[{"Port":70000}]}"#).expect_err("bad port");
        assert!(e.to_string().contains("Port"), "{e}");
        let e = serde_json::from_str::<Service>(r#"{"Ports":[{"Type":"sctp"}]}"#)
            .expect_err("bad type");
        assert!(e.to_string().contains("sctp"), "{e}");
        assert!(serde_json::from_str::<Service>(r#"{"Updated":"yesterday"}"#).is_err());
        assert!(serde_json::from_str::<Service>("[]").is_err());
    }

    #[test]
    fn version_and_listener_name() {
        let mut svc = Service {
            image: "gonitro/awesome-svc:0.1.34".into(),
            name: "awesome".into(),
            id: "deadbeef".into(),
            ..Service::default()
        };
        assert_eq!(svc.version(), "0.1.34");
        assert_eq!(svc.listener_name(), "Service(awesome-deadbeef)");
        svc.image = "registry:5000/foo:1.2".into();
        assert_eq!(svc.version(), "5000/foo");
        svc.image = "plain".into();
        assert_eq!(svc.version(), "plain");
    }

    #[test]
    fn port_for_service_port() {
        let svc = Service {
            ports: vec![
                Port {
                    kind: PortKind::Udp,
                    port: 11234,
                    service_port: 8080,
                    ip: String::new(),
                },
                Port {
                    kind: PortKind::Tcp,
                    port: 1234,
                    service_port: 8081,
                    ip: String::new(),
                },
            ],
            ..Service::default()
        };
        assert_eq!(svc.port_for_service_port(8081, PortKind::Tcp), Some(1234));
        assert_eq!(svc.port_for_service_port(8080, PortKind::Udp), Some(11234));
        assert_eq!(svc.port_for_service_port(8080, PortKind::Tcp), None);
    }
}
