//! Sidecar's `kubernetes_api` discovery (the embedded `discovery-kubernetes` plugin), end
//! to end: the real daemon with `SIDECAR_DISCOVERY=kubernetes_api` and Sidecar's `K8S_*`
//! variables, against a stand-in Kubernetes API server.
//!
//! No Kubernetes API server can be installed here, so the test serves what one serves:
//! `ServiceList`, `NodeList` and `PodList` documents written from the Kubernetes API
//! reference (core/v1), over HTTPS (rustls, a certificate from a CA made by `openssl`
//! in the test, trusted through `<K8S_CREDS_PATH>/ca.crt`) on port 443 of a loopback
//! address (443 is what makes Sidecar speak HTTPS), answering 401 to a missing or wrong
//! bearer token. It changes its answers while the daemon runs.

mod daemon_common;

use daemon_common::{Agent, WAIT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sidecar_e2e::wait_for;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const NODE: &str = "k8s-node-1";
/// The node's `InternalIP`: only data (the check is `AlwaysSuccessful` and no proxy
/// runs), so nothing is ever sent there.
const NODE_IP: &str = "192.0.2.10";

/// What the stand-in API server answers.
struct Api {
    token: String,
    services: Vec<Value>,
    nodes: Vec<Value>,
    pods: Vec<Value>,
    /// Answer every request with this status (and a `Status` object).
    failing: Option<u16>,
    /// (path, status) of every request, in order.
    log: Vec<(String, u16)>,
}

impl Api {
    fn answer(&mut self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let (status, body) = if auth != Some(format!("Bearer {}", self.token).as_str()) {
            (401, status_doc(401, "Unauthorized", "Unauthorized"))
        } else if let Some(code) = self.failing {
            (
                code,
                status_doc(code, "InternalError", "etcdserver: request timed out"),
            )
        } else {
            let route = path.split('?').next().unwrap_or("");
            match route {
                "/api/v1/services" => (200, list("ServiceList", &self.services)),
                "/api/v1/nodes" => (200, list("NodeList", &self.nodes)),
                "/api/v1/namespaces/default/pods" => (200, list("PodList", &self.pods)),
                _ => (
                    404,
                    status_doc(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                ),
            }
        };
        self.log.push((path.to_string(), status));
        (status, body)
    }
}

fn list(kind: &str, items: &[Value]) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "4242"}, "items": items})
}

fn status_doc(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A `Service` (core/v1) of type NodePort labelled `ServiceName=<name>`.
fn service(name: &str, port: u16, node_port: Option<u16>) -> Value {
    let mut p = json!({"name": "http", "protocol": "TCP", "port": port, "targetPort": "http"});
    if let Some(np) = node_port {
        p["nodePort"] = json!(np);
    }
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("svc-{name}"),
                     "resourceVersion": "100", "creationTimestamp": "2024-05-01T09:00:00Z",
                     "labels": {"ServiceName": name, "Environment": "test"}},
        "spec": {"ports": [p], "selector": {"ServiceName": name},
                 "clusterIP": "10.96.10.1", "clusterIPs": ["10.96.10.1"],
                 "type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
                 "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}
    })
}

/// A `Node` (core/v1) with its `InternalIP` and `Hostname` addresses.
fn node(name: &str, ip: &str) -> Value {
    json!({
        "metadata": {"name": name, "uid": format!("node-{name}"), "resourceVersion": "7",
                     "creationTimestamp": "2024-04-01T00:00:00Z",
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                            "lastTransitionTime": "2024-04-01T00:00:00Z"}],
            "nodeInfo": {"kubeletVersion": "v1.30.2", "containerRuntimeVersion": "containerd://1.7.18",
                         "osImage": "Debian GNU/Linux 12 (bookworm)", "architecture": "amd64"}
        }
    })
}

/// A running `Pod` (core/v1) labelled `ServiceName=<service>`.
fn pod(name: &str, uid: &str, service: &str, node: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "300",
                     "creationTimestamp": "2024-05-01T10:00:00Z",
                     "labels": {"ServiceName": service, "ProxyMode": "tcp",
                                "pod-template-hash": "5d8f7c9b6"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": format!("{service}-5d8f7c9b6"), "uid": "rs-1",
                                          "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": node, "restartPolicy": "Always", "serviceAccountName": "default",
                 "containers": [{"name": "app", "image": format!("registry.example/{service}:1.4.2"),
                                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "hostIP": NODE_IP, "podIP": "10.244.1.17",
                   "podIPs": [{"ip": "10.244.1.17"}], "startTime": "2024-05-01T10:00:01Z",
                   "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                                   "lastTransitionTime": "2024-05-01T10:00:05Z"}]}
    })
}

/// A CA and a server certificate it signs for `ip`: (ca.crt, server chain, server key).
fn certificates(dir: &Path, ip: Ipv4Addr) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-kubernetes-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=kube-apiserver",
    ]);
    openssl(&csr);
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName=IP:{ip},DNS:kubernetes.default.svc\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("write ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let read = |f: &str| std::fs::read(dir.join(f)).expect("read pem");
    (read("ca.crt"), read("server.crt"), read("server.key"))
}

/// Port 443 on some loopback address (tests may run side by side).
fn bind_443() -> (TcpListener, Ipv4Addr) {
    let seed = std::process::id();
    for i in 0..64u32 {
        let n = seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7919);
        let ip = Ipv4Addr::new(127, 44, (n >> 8) as u8, (n as u8).max(2));
        match TcpListener::bind((ip, 443)) {
            Ok(l) => return (l, ip),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!(
                "bind {ip}:443 (this test binds port 443, which needs root or CAP_NET_BIND_SERVICE): {e}"
            ),
        }
    }
    panic!("no free loopback address for port 443");
}

/// Serves `api` over HTTPS on `listener`, one request per connection.
fn serve(listener: TcpListener, chain: &[u8], key: &[u8], api: Arc<Mutex<Api>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<_, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(key).expect("server key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    let config = Arc::new(config);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let (config, api) = (config.clone(), api.clone());
            std::thread::spawn(move || {
                let Ok(tls) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut stream = rustls::StreamOwned::new(tls, tcp);
                let mut reader = BufReader::new(&mut stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {
                            if let Some((k, v)) = line.split_once(':')
                                && k.eq_ignore_ascii_case("authorization")
                            {
                                auth = Some(v.trim().to_string());
                            }
                        }
                    }
                }
                let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                let (status, body) = api
                    .lock()
                    .expect("api state")
                    .answer(&path, auth.as_deref());
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.flush();
                stream.conn.send_close_notify();
                let _ = stream.flush();
            });
        }
    });
}

/// `value` written to `path` as Kubernetes updates a mounted secret: a new file renamed
/// over the old one.
fn replace(path: &Path, value: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, value).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn metric(agent: &Agent, line_start: &str) -> Option<f64> {
    agent
        .get("/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

fn wait_for_log(agent: &Agent, text: &str) {
    wait_for(&format!("{text:?} in the log"), WAIT, || {
        agent.log().contains(text).then_some(())
    });
}

const HEALTHY: &str = "sidecar_discovery_source_healthy{source=\"plugin:discovery-kubernetes\"}";

#[test]
fn pods_on_this_node_are_announced_from_the_kubernetes_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (listener, ip) = bind_443();
    let (ca, chain, key) = certificates(dir.path(), ip);
    let creds = dir.path().join("serviceaccount");
    std::fs::create_dir(&creds).expect("creds dir");
    std::fs::write(creds.join("ca.crt"), &ca).expect("ca.crt");
    let api = Arc::new(Mutex::new(Api {
        token: "token-1".into(),
        services: vec![
            service("web", 80, Some(30080)),
            service("db", 5432, None),
            // The API server's own Service: no ServiceName label, not Sidecar's.
            json!({"metadata": {"name": "kubernetes", "namespace": "default", "uid": "svc-k",
                                "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                            "type": "ClusterIP", "clusterIP": "10.96.0.1"}}),
        ],
        nodes: vec![node("k8s-node-0", "192.0.2.9"), node(NODE, NODE_IP)],
        pods: vec![
            pod("web-5d8f7c9b6-a1", "uid-web-1", "web", NODE),
            pod("web-5d8f7c9b6-b2", "uid-web-2", "web", "k8s-node-0"),
            pod("db-0", "uid-db-0", "db", NODE),
            {
                let mut p = pod("web-5d8f7c9b6-c3", "uid-web-3", "web", NODE);
                p["metadata"]["labels"]["SidecarDiscover"] = json!("false");
                p
            },
        ],
        failing: None,
        log: Vec::new(),
    }));
    serve(listener, &chain, &key, api.clone());

    // The poll interval alone comes from plugins.toml (Sidecar polls every 5 s); the
    // plugin's settings, grants and credentials come from the K8S_ variables.
    let plugins = dir.path().join("plugins.toml");
    std::fs::write(
        &plugins,
        "[[discovery]]\nplugin = \"discovery-kubernetes\"\ninterval = \"300ms\"\n",
    )
    .expect("plugins.toml");
    std::fs::write(dir.path().join("static.json"), "[]").expect("static.json");
    let (ip_s, creds_s, plugins_s) = (
        ip.to_string(),
        creds.display().to_string(),
        plugins.display().to_string(),
    );
    // No token file yet: Sidecar crashed on its first poll; we report it and carry on.
    let agent = Agent::start_in(
        dir,
        NODE,
        &[
            ("SIDECAR_DISCOVERY", "kubernetes_api,static"),
            ("K8S_KUBE_API_IP", ip_s.as_str()),
            ("K8S_KUBE_API_PORT", "443"),
            ("K8S_NAMESPACE", "default"),
            ("K8S_KUBE_TIMEOUT", "2s"),
            ("K8S_CREDS_PATH", creds_s.as_str()),
            ("SIDECAR_PLUGINS_FILE", plugins_s.as_str()),
        ],
    );
    wait_for_log(&agent, &format!("bearer token file {creds_s}/token"));
    assert_eq!(metric(&agent, HEALTHY), Some(0.0));
    replace(&creds.join("token"), "token-1\n");

    // This node's web pod, on the web Service's node port at the node's InternalIP.
    let web = agent.wait_status("web", 0);
    assert_eq!(web["ID"], "uid-web-1");
    assert_eq!(web["Hostname"], NODE);
    assert_eq!(web["Image"], "registry.example/web:1.4.2");
    assert_eq!(web["ProxyMode"], "tcp");
    assert_eq!(
        web["Ports"],
        json!([{"Type": "tcp", "Port": 30080, "ServicePort": 80, "IP": NODE_IP}])
    );
    assert!(
        web["Created"]
            .as_str()
            .is_some_and(|c| c.starts_with("2024-05-01T10:00:00")),
        "{web}"
    );
    let names: Vec<Value> = agent
        .instances()
        .iter()
        .map(|s| s["Name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("web")],
        "other node's pod, opt-out pod and the Service without a node port are not announced"
    );
    wait_for("the source healthy", WAIT, || {
        (metric(&agent, HEALTHY) == Some(1.0)).then_some(())
    });

    // A Service and its pod added; then the web pod removed.
    {
        let mut a = api.lock().expect("api");
        a.services.push(service("api", 8443, Some(30443)));
        a.pods.push(pod("api-7c9-x1", "uid-api-1", "api", NODE));
    }
    let api_svc = agent.wait_status("api", 0);
    assert_eq!(api_svc["Ports"][0]["Port"], 30443);
    api.lock()
        .expect("api")
        .pods
        .retain(|p| p["metadata"]["uid"] != "uid-web-1");
    agent.wait_status("web", 1);

    // The API fails: the last good list stays, the failure is reported.
    api.lock().expect("api").failing = Some(500);
    wait_for("the failure reported", WAIT, || {
        (metric(&agent, HEALTHY) == Some(0.0)).then_some(())
    });
    wait_for_log(&agent, "HTTP 500: etcdserver: request timed out");
    let failed_before = api
        .lock()
        .expect("api")
        .log
        .iter()
        .filter(|(_, s)| *s == 500)
        .count();
    wait_for("more failed polls", WAIT, || {
        let failed = api
            .lock()
            .expect("api")
            .log
            .iter()
            .filter(|(_, s)| *s == 500)
            .count();
        (failed >= failed_before + 3).then_some(())
    });
    assert_eq!(
        agent.wait_status("api", 0)["ID"],
        "uid-api-1",
        "kept while the API fails"
    );
    api.lock().expect("api").failing = None;

    // A malformed pod is skipped, alone and with its reason; the good one beside it is
    // announced.
    {
        let mut a = api.lock().expect("api");
        let mut broken = pod("web-5d8f7c9b6-d4", "uid-broken", "web", NODE);
        broken["metadata"]["uid"] = Value::Null;
        a.pods.push(broken);
        let mut odd_port = service("odd", 80, None);
        odd_port["spec"]["ports"][0]["nodePort"] = json!("30099");
        a.services.push(odd_port);
        a.pods
            .push(pod("web-5d8f7c9b6-e5", "uid-web-5", "web", NODE));
    }
    let web5 = wait_for("the new web pod", WAIT, || {
        agent
            .instances()
            .into_iter()
            .find(|s| s["ID"] == "uid-web-5" && s["Status"] == 0)
    });
    assert_eq!(web5["Ports"][0]["Port"], 30080);
    wait_for("the source healthy again", WAIT, || {
        (metric(&agent, HEALTHY) == Some(1.0)).then_some(())
    });
    wait_for_log(
        &agent,
        "skipped a malformed object: pod default/web-5d8f7c9b6-d4: metadata.uid is missing",
    );
    wait_for_log(
        &agent,
        "skipped a malformed object: service default/odd: spec.ports[0].nodePort is not a number",
    );
    assert_eq!(
        agent.log().matches("metadata.uid is missing").count(),
        1,
        "logged once while it stays broken"
    );

    // The token rotates: the server moves on first (401s, reported), then the file
    // changes and the next poll uses the new token.
    api.lock().expect("api").token = "token-2".into();
    wait_for_log(&agent, "HTTP 401: Unauthorized");
    replace(&creds.join("token"), "token-2");
    api.lock()
        .expect("api")
        .pods
        .push(pod("api-7c9-x2", "uid-api-2", "api", NODE));
    wait_for("a pod seen with the rotated token", WAIT, || {
        agent
            .instances()
            .into_iter()
            .find(|s| s["ID"] == "uid-api-2" && s["Status"] == 0)
    });
    assert_eq!(metric(&agent, HEALTHY), Some(1.0));
    let log = api.lock().expect("api").log.clone();
    assert!(
        log.iter()
            .any(|(p, _)| p.starts_with("/api/v1/namespaces/default/pods?")
                && p.contains("fieldSelector=spec.nodeName%3Dk8s-node-1")),
        "pods are asked for this node only: {log:?}"
    );
    assert!(
        !agent.log().contains("token-2"),
        "the token never reaches the log"
    );
}
