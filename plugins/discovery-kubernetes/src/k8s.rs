//! Kubernetes API v1 list documents (`ServiceList`, `NodeList`, `PodList`) -> what
//! Sidecar announces. Pure functions, so they are tested natively.
//!
//! A document that is not a list fails the whole poll (the host keeps the last good
//! set); an object in it that does not have the shape the API reference gives is
//! skipped alone, with a reason naming it.

use serde_json::{Map, Value};
use sidecar_plugin_sdk::discovery_source::{CheckSpec, Discovered};
use sidecar_plugin_sdk::types::{Port, PortKind, Service, ServiceStatus, Timestamp};

/// The label that names the Sidecar service (on Services and Pods).
pub const SERVICE_NAME: &str = "ServiceName";

/// One page of a list: its items and the `metadata.continue` token, if more follow.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

/// Parses one page of a `<kind>List` document.
pub fn page(text: &str, kind: &str) -> Result<Page, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let map = doc.as_object().ok_or("not a JSON object")?;
    if let Some(k) = map.get("kind").and_then(Value::as_str)
        && k != kind
    {
        return Err(format!("expected a {kind}, got a {k}"));
    }
    let items = match map.get("items") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("`items` is not a list".into()),
    };
    let next = map
        .get("metadata")
        .and_then(|m| m.get("continue"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok(Page { items, next })
}

/// A port a Service exposes on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePort {
    pub kind: PortKind,
    pub node_port: u16,
    pub port: u16,
}

/// A Service with a `ServiceName` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sService {
    pub namespace: String,
    pub service_name: String,
    pub node_ports: Vec<NodePort>,
}

/// A node: its `Hostname` and `InternalIP` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sNode {
    pub hostname: String,
    pub internal_ip: String,
}

/// A pod that asks to be announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub service_name: String,
    pub node_name: String,
    pub image: String,
    /// (seconds, nanoseconds) since the Unix epoch.
    pub created: Option<(i64, u32)>,
    pub proxy_mode: String,
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not an object"))
}

/// An optional string field: absent or null is empty, another type is an error.
fn text(map: &Map<String, Value>, key: &str, path: &str) -> Result<String, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{path}{key} is not a string")),
    }
}

fn child<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => obj(v, &format!("{path}{key}")).map(Some),
    }
}

fn list<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value], String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{path}{key} is not a list")),
    }
}

fn labels(meta: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    Ok(child(meta, "labels", "metadata.")?
        .cloned()
        .unwrap_or_default())
}

/// `namespace/name` of an object, for messages (best effort: it may be malformed).
pub fn object_name(item: &Value) -> String {
    let meta = item.get("metadata");
    let get = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    match (get("namespace"), get("name")) {
        (_, "") => "(unnamed)".to_string(),
        ("", name) => name.to_string(),
        (ns, name) => format!("{ns}/{name}"),
    }
}

/// A Service; `Ok(None)` when it has no `ServiceName` label (not Sidecar's business).
pub fn service(item: &Value) -> Result<Option<K8sService>, String> {
    let map = obj(item, "the item")?;
    let meta = child(map, "metadata", "")?.ok_or("metadata is missing")?;
    let labels = labels(meta)?;
    let service_name = text(&labels, SERVICE_NAME, "metadata.labels.")?;
    if service_name.is_empty() {
        return Ok(None);
    }
    let mut node_ports = Vec::new();
    if let Some(spec) = child(map, "spec", "")? {
        for (i, p) in list(spec, "ports", "spec.")?.iter().enumerate() {
            let path = format!("spec.ports[{i}].");
            let p = obj(p, &format!("spec.ports[{i}]"))?;
            let number = |key: &str| -> Result<u16, String> {
                match p.get(key) {
                    None | Some(Value::Null) => Ok(0),
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .and_then(|v| u16::try_from(v).ok())
                        .ok_or_else(|| format!("{path}{key} = {n} is not a port number")),
                    Some(_) => Err(format!("{path}{key} is not a number")),
                }
            };
            let (node_port, port) = (number("nodePort")?, number("port")?);
            // `targetPort` (a number or a name) is not needed: traffic goes to the node port.
            let kind = match text(p, "protocol", &path)?.as_str() {
                "" | "TCP" => PortKind::Tcp,
                "UDP" => PortKind::Udp,
                // SCTP: neither proxy carries it.
                _ => continue,
            };
            if node_port > 0 {
                node_ports.push(NodePort {
                    kind,
                    node_port,
                    port,
                });
            }
        }
    }
    Ok(Some(K8sService {
        namespace: text(meta, "namespace", "metadata.")?,
        service_name,
        node_ports,
    }))
}

pub fn node(item: &Value) -> Result<K8sNode, String> {
    let map = obj(item, "the item")?;
    let mut node = K8sNode {
        hostname: String::new(),
        internal_ip: String::new(),
    };
    if let Some(status) = child(map, "status", "")? {
        for (i, a) in list(status, "addresses", "status.")?.iter().enumerate() {
            let path = format!("status.addresses[{i}].");
            let a = obj(a, &format!("status.addresses[{i}]"))?;
            let address = text(a, "address", &path)?;
            match text(a, "type", &path)?.as_str() {
                "Hostname" => node.hostname = address,
                "InternalIP" if node.internal_ip.is_empty() => node.internal_ip = address,
                _ => {}
            }
        }
    }
    Ok(node)
}

/// A pod; `Ok(None)` when it does not ask to be announced (no `ServiceName` label,
/// `SidecarDiscover=false`) or has finished (`Succeeded`, `Failed`).
pub fn pod(item: &Value) -> Result<Option<K8sPod>, String> {
    let map = obj(item, "the item")?;
    let meta = child(map, "metadata", "")?.ok_or("metadata is missing")?;
    let labels = labels(meta)?;
    let service_name = text(&labels, SERVICE_NAME, "metadata.labels.")?;
    if service_name.is_empty() || text(&labels, "SidecarDiscover", "metadata.labels.")? == "false" {
        return Ok(None);
    }
    if let Some(status) = child(map, "status", "")?
        && matches!(
            text(status, "phase", "status.")?.as_str(),
            "Succeeded" | "Failed"
        )
    {
        return Ok(None);
    }
    let uid = text(meta, "uid", "metadata.")?;
    if uid.is_empty() {
        return Err("metadata.uid is missing".into());
    }
    let spec = child(map, "spec", "")?.ok_or("spec is missing")?;
    let image = match list(spec, "containers", "spec.")?.first() {
        Some(c) => text(
            obj(c, "spec.containers[0]")?,
            "image",
            "spec.containers[0].",
        )?,
        None => String::new(),
    };
    let created = match text(meta, "creationTimestamp", "metadata.")?.as_str() {
        "" => None,
        t => Some(
            rfc3339(t).ok_or_else(|| format!("metadata.creationTimestamp {t:?} is not a time"))?,
        ),
    };
    let proxy_mode = match text(&labels, "ProxyMode", "metadata.labels.")?.as_str() {
        m @ ("tcp" | "ws") => m.to_string(),
        _ => "http".to_string(),
    };
    Ok(Some(K8sPod {
        namespace: text(meta, "namespace", "metadata.")?,
        name: text(meta, "name", "metadata.")?,
        uid,
        service_name,
        node_name: text(spec, "nodeName", "spec.")?,
        image,
        created,
        proxy_mode,
    }))
}

/// What this node announces: every pod on it whose Service (same `ServiceName` label,
/// the pod's namespace first) has node ports, on the node's `InternalIP`. Pods whose
/// Service is missing or has no node port are passed over, with the reason.
pub fn announce(
    services: &[K8sService],
    node: &K8sNode,
    pods: &[K8sPod],
    node_name: &str,
) -> (Vec<Discovered>, Vec<String>) {
    let mut found = Vec::new();
    let mut passed = Vec::new();
    for pod in pods.iter().filter(|p| p.node_name == node_name) {
        let candidates = services
            .iter()
            .filter(|s| s.service_name == pod.service_name);
        // The last listed wins, as in Sidecar; one in the pod's namespace first.
        let svc = candidates
            .clone()
            .rfind(|s| s.namespace == pod.namespace)
            .or_else(|| candidates.clone().next_back());
        let Some(svc) = svc else {
            passed.push(format!(
                "pod {}/{}: no Service labelled {SERVICE_NAME}={}",
                pod.namespace, pod.name, pod.service_name
            ));
            continue;
        };
        if svc.node_ports.is_empty() {
            passed.push(format!(
                "pod {}/{}: Service {SERVICE_NAME}={} has no node port",
                pod.namespace, pod.name, pod.service_name
            ));
            continue;
        }
        found.push(Discovered {
            service: Service {
                id: pod.uid.clone(),
                name: pod.service_name.clone(),
                image: pod.image.clone(),
                created: pod
                    .created
                    .map_or(ZERO, |(seconds, nanoseconds)| Timestamp {
                        seconds,
                        nanoseconds,
                    }),
                // This host (the node's name is ours by construction).
                hostname: String::new(),
                ports: svc
                    .node_ports
                    .iter()
                    .map(|p| Port {
                        kind: p.kind,
                        port: p.node_port,
                        service_port: p.port,
                        ip: node.internal_ip.clone(),
                    })
                    .collect(),
                updated: ZERO,
                proxy_mode: pod.proxy_mode.clone(),
                status: ServiceStatus::Alive,
            },
            // The Service's endpoints are Kubernetes' business (its probes): Sidecar
            // announced them with the always-successful check.
            check: Some(CheckSpec {
                check_type: "AlwaysSuccessful".into(),
                args: String::new(),
            }),
            listen_port: None,
        });
    }
    (found, passed)
}

const ZERO: Timestamp = Timestamp {
    seconds: 0,
    nanoseconds: 0,
};

/// RFC 3339 as the API writes it (`2024-05-01T10:00:00Z`, optional fraction, `Z` or
/// an offset), as (seconds, nanoseconds) since the Unix epoch.
pub fn rfc3339(s: &str) -> Option<(i64, u32)> {
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &frac[..n.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().ok()?;
            let m: i64 = o[4..6].parse().ok()?;
            let secs = h * 3600 + m * 60;
            if &o[..1] == "-" { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some((seconds, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339("2024-05-01T10:00:00Z"), Some((1_714_557_600, 0)));
        assert_eq!(
            rfc3339("1970-01-01T01:00:00.5+01:00"),
            Some((0, 500_000_000))
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00+é:0",
        ] {
            assert!(rfc3339(bad).is_none(), "{bad}");
        }
    }

    fn svc_doc(name: &str, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"ServiceName": name}},
               "spec": {"type": "NodePort", "ports": ports}})
    }

    fn pod_doc(uid: &str, service: &str, node: &str) -> Value {
        json!({"metadata": {"name": format!("{service}-{uid}"), "namespace": "default", "uid": uid,
                            "creationTimestamp": "2024-05-01T10:00:00Z",
                            "labels": {"ServiceName": service, "ProxyMode": "tcp"}},
               "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.27"}]},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn pods_on_this_node_are_announced_on_their_services_node_ports() {
        let services: Vec<K8sService> = [
            svc_doc("web", json!([{"port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"},
                                  {"port": 53, "nodePort": 30053, "protocol": "UDP"},
                                  {"port": 9000, "targetPort": 9000}])),
            svc_doc("internal", json!([{"port": 80}])),
            json!({"metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"ports": [{"port": 443}]}}),
        ]
        .iter()
        .filter_map(|v| service(v).expect("valid"))
        .collect();
        assert_eq!(services.len(), 2, "no ServiceName label: not ours");
        let node = node(&json!({"metadata": {"name": "n1"}, "status": {"addresses": [
            {"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "n1"}]}}))
        .expect("valid");
        assert_eq!(node.internal_ip, "10.0.0.5");
        let pods: Vec<K8sPod> = [
            pod_doc("u1", "web", "n1"),
            pod_doc("u2", "web", "n2"),
            pod_doc("u3", "internal", "n1"),
            pod_doc("u4", "gone", "n1"),
        ]
        .iter()
        .filter_map(|v| pod(v).expect("valid"))
        .collect();
        let (found, passed) = announce(&services, &node, &pods, "n1");
        assert_eq!(found.len(), 1);
        let s = &found[0].service;
        assert_eq!(
            (s.id.as_str(), s.name.as_str(), s.image.as_str()),
            ("u1", "web", "nginx:1.27")
        );
        assert_eq!(s.proxy_mode, "tcp");
        assert_eq!(s.created.seconds, 1_714_557_600);
        assert_eq!(s.ports.len(), 2);
        assert_eq!((s.ports[0].port, s.ports[0].service_port), (30080, 80));
        assert_eq!(s.ports[0].ip, "10.0.0.5");
        assert!(matches!(s.ports[1].kind, PortKind::Udp));
        assert_eq!(
            found[0].check.as_ref().map(|c| c.check_type.as_str()),
            Some("AlwaysSuccessful")
        );
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[0].contains("has no node port"), "{passed:?}");
        assert!(
            passed[1].contains("no Service labelled ServiceName=gone"),
            "{passed:?}"
        );
    }

    #[test]
    fn opt_outs_finished_pods_and_malformed_objects() {
        let mut off = pod_doc("u1", "web", "n1");
        off["metadata"]["labels"]["SidecarDiscover"] = json!("false");
        assert_eq!(pod(&off), Ok(None));
        let mut done = pod_doc("u1", "web", "n1");
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(pod(&done), Ok(None));
        let mut odd = pod_doc("u1", "web", "n1");
        odd["metadata"]["labels"]["ProxyMode"] = json!("sctp");
        assert_eq!(
            pod(&odd).expect("valid").map(|p| p.proxy_mode).as_deref(),
            Some("http")
        );

        let mut no_uid = pod_doc("u1", "web", "n1");
        no_uid["metadata"]["uid"] = Value::Null;
        assert_eq!(pod(&no_uid), Err("metadata.uid is missing".to_string()));
        let mut bad_time = pod_doc("u1", "web", "n1");
        bad_time["metadata"]["creationTimestamp"] = json!("soon");
        assert!(
            pod(&bad_time)
                .expect_err("bad")
                .contains("creationTimestamp")
        );
        assert!(pod(&json!("pod")).is_err());
        let e =
            service(&svc_doc("web", json!([{"port": 80, "nodePort": "30080"}]))).expect_err("bad");
        assert_eq!(e, "spec.ports[0].nodePort is not a number");
        let e =
            service(&svc_doc("web", json!([{"port": 80, "nodePort": 70000}]))).expect_err("bad");
        assert!(e.contains("70000"), "{e}");
        assert!(node(&json!({"status": {"addresses": "n1"}})).is_err());
        assert_eq!(object_name(&pod_doc("u1", "web", "n1")), "default/web-u1");
        assert_eq!(object_name(&json!(1)), "(unnamed)");
    }

    #[test]
    fn list_pages() {
        let p = page(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{"continue":"abc"},"items":[{}]}"#,
            "PodList",
        )
        .expect("valid");
        assert_eq!((p.items.len(), p.next.as_deref()), (1, Some("abc")));
        let p = page(
            r#"{"kind":"PodList","items":null,"metadata":{"continue":""}}"#,
            "PodList",
        )
        .expect("valid");
        assert!(p.items.is_empty() && p.next.is_none());
        assert!(page(r#"{"kind":"Status","status":"Failure"}"#, "PodList").is_err());
        assert!(page("[", "PodList").is_err());
        assert!(page(r#"{"items":{}}"#, "PodList").is_err());
    }
}
