//! Documents rendered once per catalog generation and served as shared `Bytes`: a 10,000
//! service catalog is several MB of JSON, too much to encode per request or per watcher.

use crate::shared_catalog::Snapshot;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use sidecar_catalog::{Service, ServicesState, Timestamp};
use sidecar_cluster::MemberList;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Documents above this size give their transient buffers back to the OS.
const LARGE: usize = 1 << 20;

/// Renders of one snapshot.
pub struct Rendered {
    pub snap: Arc<Snapshot>,
    by_service: OnceLock<Bytes>,
    /// `/api/services.json`, keyed by the member names it lists.
    services: Mutex<Option<(Vec<String>, Bytes)>>,
}

/// The renders of the newest snapshot seen.
#[derive(Default)]
pub struct Renders {
    current: Mutex<Option<Arc<Rendered>>>,
}

impl Renders {
    pub fn get(&self, snap: Arc<Snapshot>) -> Arc<Rendered> {
        let mut cur = self.current.lock();
        if let Some(r) = cur.as_ref()
            && r.snap.generation == snap.generation
        {
            return r.clone();
        }
        let r = Arc::new(Rendered {
            snap,
            by_service: OnceLock::new(),
            services: Mutex::new(None),
        });
        *cur = Some(r.clone());
        r
    }
}

#[derive(Serialize)]
struct MemberDoc<'a> {
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "LastUpdated")]
    last_updated: Timestamp,
    #[serde(rename = "ServiceCount")]
    service_count: usize,
}

#[derive(Serialize)]
struct ServicesDoc<'a> {
    #[serde(rename = "Services")]
    services: BTreeMap<&'a str, Vec<&'a Service>>,
    #[serde(rename = "ClusterMembers", skip_serializing_if = "Option::is_none")]
    members: Option<BTreeMap<&'a str, MemberDoc<'a>>>,
    #[serde(rename = "ClusterName")]
    cluster_name: &'a str,
}

/// Go's `json.MarshalIndent(v, "", "  ")`: no trailing newline.
pub fn pretty<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(v).unwrap_or_default())
}

impl Rendered {
    /// The watch document: service name -> instances, compact.
    pub fn by_service(&self) -> Bytes {
        self.by_service
            .get_or_init(|| {
                let body = Bytes::from(
                    serde_json::to_vec(&self.snap.state.by_service()).unwrap_or_default(),
                );
                if body.len() > LARGE {
                    crate::memory::trim_heap();
                }
                body
            })
            .clone()
    }

    /// `/api/state.json`.
    pub fn state(&self) -> Bytes {
        self.snap.state_json()
    }

    /// `/api/services.json` with the members that are not dead.
    pub fn services(&self, members: &MemberList) -> Bytes {
        let mut names: Vec<String> = members.live().map(|m| m.name.clone()).collect();
        names.sort();
        names.dedup();
        let mut cache = self.services.lock();
        if let Some((key, body)) = cache.as_ref()
            && *key == names
        {
            return body.clone();
        }
        let body = services_doc(&self.snap.state, &names);
        if body.len() > LARGE {
            crate::memory::trim_heap();
        }
        *cache = Some((names, body.clone()));
        body
    }
}

fn services_doc(state: &ServicesState, members: &[String]) -> Bytes {
    let members = (!members.is_empty()).then(|| {
        members
            .iter()
            .map(|name| {
                let server = state.servers.get(name);
                (
                    name.as_str(),
                    MemberDoc {
                        name,
                        last_updated: server
                            .map(|s| s.last_updated)
                            .unwrap_or(Timestamp::UNIX_EPOCH),
                        service_count: server.map(|s| s.services.len()).unwrap_or(0),
                    },
                )
            })
            .collect()
    });
    pretty(&ServicesDoc {
        services: state.by_service(),
        members,
        cluster_name: &state.cluster_name,
    })
}

/// `/api/services/<name>.json`: `None` when no instance has that name.
pub fn one_service(state: &ServicesState, name: &str) -> Option<Bytes> {
    let instances: Vec<&Service> = state.services().filter(|s| s.name == name).collect();
    if instances.is_empty() {
        return None;
    }
    #[derive(Serialize)]
    struct Doc<'a> {
        #[serde(rename = "Services")]
        services: BTreeMap<&'a str, Vec<&'a Service>>,
        #[serde(rename = "ClusterName")]
        cluster_name: &'a str,
    }
    Some(pretty(&Doc {
        services: BTreeMap::from([(name, instances)]),
        cluster_name: &state.cluster_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::{Port, PortKind, Server, Status};

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("timestamp")
    }

    /// The example of sidecar-behaviour §6.2, byte for byte.
    #[test]
    fn services_document_matches_go_marshal_indent() {
        let svc = Service {
            id: "deadbeef123".into(),
            name: "bocaccio".into(),
            image: "101deadbeef".into(),
            created: ts("2024-05-01T10:00:00Z"),
            hostname: "chaucer".into(),
            ports: vec![Port {
                kind: PortKind::Tcp,
                port: 9999,
                service_port: 10100,
                ip: "127.0.0.1".into(),
            }],
            updated: ts("2024-05-01T10:00:05.5Z"),
            proxy_mode: "http".into(),
            status: Status::Alive,
        };
        let mut state = ServicesState::new("chaucer", "default");
        let mut server = Server::new("chaucer");
        server.last_updated = ts("2024-05-01T10:00:05.5Z");
        server.services.insert(svc.id.clone(), svc);
        state.servers.insert("chaucer".into(), server);
        let body = services_doc(&state, &["chaucer".to_string()]);
        let expected = r#"{
  "Services": {
    "bocaccio": [
      {
        "ID": "deadbeef123",
        "Name": "bocaccio",
        "Image": "101deadbeef",
        "Created": "2024-05-01T10:00:00Z",
        "Hostname": "chaucer",
        "Ports": [
          {
            "Type": "tcp",
            "Port": 9999,
            "ServicePort": 10100,
            "IP": "127.0.0.1"
          }
        ],
        "Updated": "2024-05-01T10:00:05.5Z",
        "ProxyMode": "http",
        "Status": 0
      }
    ]
  },
  "ClusterMembers": {
    "chaucer": {
      "Name": "chaucer",
      "LastUpdated": "2024-05-01T10:00:05.5Z",
      "ServiceCount": 1
    }
  },
  "ClusterName": "default"
}"#;
        assert_eq!(std::str::from_utf8(&body).expect("utf8"), expected);
    }

    #[test]
    fn empty_catalog_and_unknown_members() {
        let state = ServicesState::new("me", "default");
        let body = services_doc(&state, &["me".to_string()]);
        let text = std::str::from_utf8(&body).expect("utf8");
        assert!(text.starts_with("{\n  \"Services\": {},\n  \"ClusterMembers\": {\n    \"me\": {\n      \"Name\": \"me\",\n      \"LastUpdated\": \"1970-01-01T00:00:00Z\",\n      \"ServiceCount\": 0\n"), "{text}");
        assert!(one_service(&state, "x").is_none());
    }
}
