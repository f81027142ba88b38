//! Envoy's v1 REST API (`/v1/registration`, `/v1/clusters`, `/v1/listeners`) answers
//! what the Go Sidecar answers for the same services: the real Go binary runs in a
//! network and UTS namespace of its own (loopback only) with the same static.json, and
//! both answers are compared field by field (only the clock-dependent
//! `last_check_in` differs, and list order, which is Go's map order).

mod daemon_common;

use daemon_common::{Agent, WAIT};
use serde_json::Value;
use sidecar_e2e::{wait_for, workspace_root};
use std::path::PathBuf;
use std::process::Command;

const STATIC: &str = r#"[
  {"Service":{"Name":"bocaccio","Image":"shop/bocaccio:1.4","Hostname":"conf-host","ProxyMode":"http",
    "Ports":[{"Type":"tcp","Port":8080,"ServicePort":10100},{"Type":"tcp","Port":8081}]},
   "Check":{"Type":"AlwaysSuccessful"}},
  {"Service":{"Name":"ledger","Image":"ledger","Hostname":"conf-host","ProxyMode":"tcp",
    "Ports":[{"Type":"tcp","Port":5432,"ServicePort":15432}]},
   "Check":{"Type":"AlwaysSuccessful"}},
  {"Service":{"Name":"sockets","Image":"ws:2","Hostname":"conf-host","ProxyMode":"ws",
    "Ports":[{"Type":"tcp","Port":7000,"ServicePort":17000}]},
   "Check":{"Type":"AlwaysSuccessful"}},
  {"Service":{"Name":"broken","Image":"broken:1","Hostname":"conf-host","ProxyMode":"http",
    "Ports":[{"Type":"tcp","Port":7001,"ServicePort":17001}]},
   "Check":{"Type":"HttpGet","Args":"http://127.0.0.1:1/"}}
]"#;

const PATHS: &[&str] = &[
    "/v1/clusters",
    "/v1/clusters/any-cluster/any-node",
    "/v1/listeners",
    "/v1/listeners/any-cluster/any-node",
    "/v1/registration/bocaccio:10100",
    "/v1/registration/ledger:15432",
    "/v1/registration/broken:17001",
    "/v1/registration/nobody:1",
    "/v1/registration/bocaccio",
    "/v1/registration/bocaccio:x",
];

fn go_sidecar() -> Option<PathBuf> {
    let bin = workspace_root().join("../shared/tools/go-sidecar/sidecar-e97b4225");
    bin.exists().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs the Go Sidecar alone in fresh namespaces and returns `status body` for each
/// path, once its services are ALIVE.
fn go_answers(bin: &PathBuf, dir: &std::path::Path) -> Vec<(u16, Value)> {
    let mut script = String::from(
        "set -e\nip link set lo up\nhostname conf-host\n\
         ./sidecar >go.log 2>&1 &\npid=$!\n\
         for i in $(seq 1 200); do\n\
           n=$(curl -s 127.0.0.1:7777/v1/clusters | grep -o '\"name\"' | wc -l || true)\n\
           [ \"$n\" -ge 3 ] && break; sleep 0.1\n\
         done\nsleep 0.5\n",
    );
    for (i, p) in PATHS.iter().enumerate() {
        script.push_str(&format!(
            "curl -s -o out{i}.json -w '%{{http_code}}' 'http://127.0.0.1:7777{p}' > code{i}\n"
        ));
    }
    script.push_str("kill $pid\n");
    std::fs::copy(bin, dir.join("sidecar")).expect("copy the Go binary");
    let out = Command::new("unshare")
        .args(["-n", "-u", "--", "sh", "-c", &script])
        .current_dir(dir)
        .env("SIDECAR_DISCOVERY", "static")
        .env("STATIC_CONFIG_FILE", dir.join("static.json"))
        .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
        .env("HAPROXY_DISABLE", "true")
        .env("ENVOY_USE_GRPC_API", "false")
        .output()
        .expect("run the Go Sidecar");
    assert!(
        out.status.success(),
        "Go Sidecar run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("go.log")).unwrap_or_default()
    );
    (0..PATHS.len())
        .map(|i| {
            let code = std::fs::read_to_string(dir.join(format!("code{i}")))
                .expect("status code")
                .trim()
                .parse()
                .expect("numeric status");
            let body = std::fs::read_to_string(dir.join(format!("out{i}.json"))).expect("body");
            (
                code,
                serde_json::from_str(&body).unwrap_or(Value::String(body)),
            )
        })
        .collect()
}

/// Sorts every list by its `name` (or `ip_address`) and blanks `last_check_in`.
fn normalize(v: &mut Value) {
    match v {
        Value::Array(items) => {
            items.iter_mut().for_each(normalize);
            items.sort_by_key(|i| {
                i.get("name")
                    .or_else(|| i.get("ip_address"))
                    .map(ToString::to_string)
                    .unwrap_or_default()
            });
        }
        Value::Object(map) => {
            if map.contains_key("last_check_in") {
                map.insert("last_check_in".into(), Value::from("<time>"));
            }
            map.values_mut().for_each(normalize);
        }
        _ => {}
    }
}

#[test]
fn v1_api_answers_what_go_sidecar_answers() {
    let Some(bin) = go_sidecar() else {
        eprintln!("skipped: ../shared/tools/go-sidecar is not on this machine");
        return;
    };
    if !is_root() {
        eprintln!("skipped: needs root for its network namespace");
        return;
    }
    let go_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(go_dir.path().join("static.json"), STATIC).expect("static.json");
    let go = go_answers(&bin, go_dir.path());

    let ours = Agent::start("conf-host", STATIC, &[]);
    wait_for("our services to be checked", WAIT, || {
        let doc = ours.get("/v1/clusters").json();
        (doc["clusters"].as_array().map_or(0, Vec::len) >= 3).then_some(())
    });
    for (path, (go_status, mut go_body)) in PATHS.iter().zip(go) {
        let resp = ours.get(path);
        assert_eq!(resp.status, go_status, "status of {path}");
        assert_eq!(
            resp.header("content-type"),
            Some("application/json"),
            "content type of {path}"
        );
        let mut body = resp.json();
        normalize(&mut body);
        normalize(&mut go_body);
        assert_eq!(body, go_body, "body of {path}");
    }
    // The SDS timestamp is Go's time.String() of the record's Updated.
    let sds = ours.get("/v1/registration/bocaccio:10100").json();
    let stamp = sds["hosts"][0]["last_check_in"]
        .as_str()
        .unwrap_or_default();
    assert!(stamp.ends_with(" +0000 UTC"), "{stamp}");
}
