//! Static discovery end to end: the built daemon reads static.json, health-checks the
//! services, announces them and serves them in Sidecar's exact shapes.

mod daemon_common;

use daemon_common::{Agent, JsonStream, TestServer, WAIT, request, request_with};
use serde_json::Value;
use sidecar_e2e::wait_for;

fn web(port: u16, check: &str) -> String {
    format!(
        r#"[{{"Service":{{"Name":"web","Image":"example/web:1.2","Ports":[{{"Type":"tcp","Port":{port},"ServicePort":10100}}],"ProxyMode":"http"}},
             "Check":{{"Type":"HttpGet","Args":"{check}"}}}}]"#
    )
}

#[test]
fn static_service_is_checked_announced_and_served_in_sidecar_shape() {
    let target = TestServer::start(200);
    let agent = Agent::start(
        "node-a",
        &web(target.port, "http://{{ host }}:{{ tcp 10100 }}/health"),
        &[("SIDECAR_HEALTH_INTERVAL", "300ms")],
    );
    let svc = agent.wait_status("web", 0);
    assert!(
        target
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/health"),
        "the templated check reached the service"
    );
    let id = svc["ID"].as_str().expect("ID").to_string();
    assert_eq!(id.len(), 12);

    // /api/services.json: Go MarshalIndent, CORS, members, key order.
    let r = agent.get("/api/services.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET"));
    assert!(
        r.body
            .starts_with("{\n  \"Services\": {\n    \"web\": [\n      {\n        \"ID\": \""),
        "{}",
        r.body
    );
    assert!(r.body.ends_with('}'), "no trailing newline");
    let keys = [
        "\"ID\"",
        "\"Name\"",
        "\"Image\"",
        "\"Created\"",
        "\"Hostname\"",
        "\"Ports\"",
        "\"Updated\"",
        "\"ProxyMode\"",
        "\"Status\"",
    ];
    let pos: Vec<usize> = keys.iter().map(|k| r.body.find(k).expect(k)).collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "Sidecar's key order: {}",
        r.body
    );
    assert!(r.body.contains(
        "\"Ports\": [\n          {\n            \"Type\": \"tcp\",\n            \"Port\": "
    ));
    let doc = r.json();
    let inst = &doc["Services"]["web"][0];
    assert_eq!(inst["Hostname"], "node-a");
    assert_eq!(inst["Image"], "example/web:1.2");
    assert_eq!(inst["ProxyMode"], "http");
    assert_eq!(
        inst["Ports"][0],
        serde_json::json!({"Type":"tcp","Port":target.port,"ServicePort":10100,"IP":"127.0.0.1"})
    );
    assert_eq!(doc["ClusterName"], "default");
    assert_eq!(doc["ClusterMembers"]["node-a"]["Name"], "node-a");
    assert_eq!(doc["ClusterMembers"]["node-a"]["ServiceCount"], 1);
    let doc_keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(doc_keys.len(), 3);

    // The deprecated alias serves the same document.
    let alias = agent.get("/services.json");
    assert_eq!(alias.status, 200);
    assert_eq!(alias.json()["Services"], doc["Services"]);

    // state.json: compact, what sidecar-executor reads.
    for path in ["/api/state.json", "/state.json"] {
        let r = agent.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(
            r.body
                .starts_with("{\"Servers\":{\"node-a\":{\"Name\":\"node-a\",\"Services\":{"),
            "{}",
            r.body
        );
        assert!(!r.body.contains('\n'));
        let st = r.json();
        assert_eq!(st["Servers"]["node-a"]["Services"][&id]["Status"], 0);
        assert_eq!(st["Hostname"], "node-a");
        assert_eq!(st["ClusterName"], "default");
    }

    // One service by name; errors exactly as Sidecar words them.
    let one = agent.get("/api/services/web.json");
    assert_eq!(one.status, 200);
    let one_doc = one.json();
    assert_eq!(one_doc["Services"]["web"][0]["ID"], id.as_str());
    assert!(one_doc.get("ClusterMembers").is_none());
    assert!(one.body.starts_with("{\n  \"Services\": {\n    \"web\": ["));
    let r = agent.get("/api/services/nope.json");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            404,
            r#"{"message":"no instances of nope found","status":"error"}"#
        )
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    for path in ["/api/services/web.xml", "/api/services.xml", "/state.txt"] {
        let r = agent.get(path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                404,
                r#"{"message":"Not Found - Invalid content type extension","status":"error"}"#
            ),
            "{path}"
        );
    }
    let r = agent.get("/no/such/page");
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    let r = request("GET", &agent.url(&format!("/api/services/{id}/drain")));
    assert_eq!(r.status, 405);
    let r = request("OPTIONS", &agent.url("/api/services.json"));
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = agent.get("/");
    assert_eq!((r.status, r.header("location")), (301, Some("/ui/")));

    // Prometheus metrics and the OpenAPI document.
    let m = agent.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    for line in [
        "sidecar_services{status=\"alive\"} 1",
        "sidecar_members{state=\"alive\"} 1",
        "sidecar_discovery_source_healthy{source=\"static\"} 1",
    ] {
        assert!(m.body.lines().any(|l| l == line), "{line} in {}", m.body);
    }
    assert!(
        m.body
            .contains("sidecar_check_duration_seconds_count{type=\"HttpGet\"}")
    );
    let api = agent.get("/api/openapi.json").json();
    assert!(api["paths"]["/api/services.json"].is_object());

    // One failed check -> UNHEALTHY, one pass -> ALIVE.
    target.set_status(500);
    agent.wait_status("web", 2);
    target.set_status(200);
    agent.wait_status("web", 0);
}

/// The default plugins are precompiled into the binary: the very first start, with an
/// empty compile cache, compiles none of them and leaves no entry in the cache.
#[test]
fn a_first_start_with_an_empty_cache_compiles_no_default_plugin() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_str().expect("utf-8 path");
    let target = TestServer::start(200);
    let agent = Agent::start(
        "node-a",
        &web(target.port, "http://{{ host }}:{{ tcp 10100 }}/health"),
        &[
            ("SIDECAR_CACHE_DIR", cache_dir),
            ("SIDECAR_HEALTH_INTERVAL", "300ms"),
        ],
    );
    // The namer and the HttpGet check plugin both ran.
    agent.wait_status("web", 0);
    let log = agent.log();
    let ready = log
        .lines()
        .find(|l| l.contains("plugins ready"))
        .unwrap_or_else(|| panic!("no \"plugins ready\" line: {log}"));
    assert!(
        ready.contains("compiled=0") && ready.contains("from_cache=0"),
        "{ready}"
    );
    assert!(!ready.contains("precompiled=0"), "{ready}");
    assert!(!log.contains("compiling it instead"), "{log}");
    let entries: Vec<String> = std::fs::read_dir(cache.path().join("plugins"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(entries.is_empty(), "cache entries written: {entries:?}");
}

#[test]
fn static_file_changes_are_followed_and_broken_files_keep_the_last_good_set() {
    let a = r#"{"Service":{"Name":"alpha","Ports":[{"Type":"udp","Port":5353,"ServicePort":53}]},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let b = r#"{"Service":{"Name":"beta","Hostname":"legacy-db","Ports":[{"Port":5432,"ServicePort":5432,"IP":"127.0.0.9"}]},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let agent = Agent::start("node-s", &format!("[{a}]"), &[]);
    let alpha = agent.wait_status("alpha", 0);
    assert_eq!(
        alpha["ProxyMode"], "http",
        "an empty ProxyMode defaults to http"
    );

    agent.write_static(&format!("[{a},{b}]"));
    let beta = agent.wait_status("beta", 0);
    assert_eq!(
        beta["Hostname"], "legacy-db",
        "Hostname override announces for a third party"
    );
    assert_eq!(beta["Ports"][0]["IP"], "127.0.0.9");
    let alpha_again = agent.wait_status("alpha", 0);
    assert_eq!(alpha_again["ID"], alpha["ID"], "IDs survive re-reads");

    agent.write_static(&format!("[{a},{b},]"));
    wait_for("the broken file to be reported", WAIT, || {
        agent.log().contains("invalid JSON").then_some(())
    });
    let names: Vec<Value> = agent
        .instances()
        .into_iter()
        .filter(|s| s["Status"] == 0)
        .map(|s| s["Name"].clone())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the last good set stays announced: {names:?}"
    );

    agent.write_static(&format!("[{b}]"));
    let gone = agent.wait_status("alpha", 1);
    assert_eq!(gone["ID"], alpha["ID"]);

    // A restarted agent announces the same IDs (Sidecar drew new random ones).
    let again = Agent::start("node-s", &format!("[{b}]"), &[]);
    assert_eq!(again.wait_status("beta", 0)["ID"], beta["ID"]);
}

/// One bad item (a 5,000-character name, past the gossip decoder's limit; a port that is
/// not a number) is refused alone, with an error naming it; the good items are announced
/// and reach a peer, whose anti-entropy with this host keeps working.
#[test]
fn a_bad_static_item_is_refused_alone() {
    let good = r#"{"Service":{"Name":"good","Ports":[{"Port":8080,"ServicePort":10080}]},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let huge = format!(
        r#"{{"Service":{{"ID":"huge","Name":"{}","Ports":[{{"Port":8081}}]}},"Check":{{"Type":"AlwaysSuccessful"}}}}"#,
        "n".repeat(5000)
    );
    let typo = r#"{"Service":{"Name":"typo","Ports":[{"Port":"80"}]}}"#;
    let agent = Agent::start("node-b", &format!("[{typo},{huge},{good}]"), &[]);
    agent.wait_status("good", 0);
    let log = wait_for("both refusals reported", WAIT, || {
        let log = agent.log();
        (log.contains("refused 2 item(s)")).then_some(log)
    });
    assert!(log.contains("target 0") && log.contains("Port"), "{log}");
    assert!(log.contains("\"huge\": Name is 5000 bytes long"), "{log}");
    assert_eq!(
        agent.instances().len(),
        1,
        "only the good item is announced"
    );
    let metrics = agent.get("/metrics").body;
    assert!(
        metrics.contains("sidecar_discovery_source_healthy{source=\"static\"} 0"),
        "the source reports the refusal"
    );
    // A peer gets the good record by gossip and anti-entropy.
    let seed = format!("127.0.0.1:{}", agent.gossip_port);
    let peer = Agent::start("node-p", "[]", &[("SIDECAR_SEEDS", seed.as_str())]);
    peer.wait_status("good", 0);
}

#[test]
fn a_web_page_cannot_drain_and_a_token_guards_writes() {
    let target = TestServer::start(200);
    let static_json = web(target.port, "http://127.0.0.1:{{ tcp 10100 }}/");
    let agent = Agent::start("node-g", &static_json, &[]);
    let id = agent.wait_status("web", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let drain = agent.url(&format!("/api/services/{id}/drain"));
    // What a page on another site can send without a preflight is refused...
    for (headers, body) in [
        (vec![("Origin", "http://evil.example")], ""),
        (vec![("Content-Type", "text/plain")], "x"),
        (
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "a=b",
        ),
        (vec![("Sec-Fetch-Site", "cross-site")], ""),
    ] {
        let r = request_with("POST", &drain, &headers, body);
        assert!(
            r.status == 403 || r.status == 415,
            "{headers:?}: {}",
            r.status
        );
        assert!(r.body.contains(r#""status":"error""#), "{}", r.body);
    }
    assert_eq!(agent.wait_status("web", 0)["Status"], 0, "still ALIVE");
    // ...while a plain `curl -X POST` from loopback drains, as Sidecar's clients do.
    assert_eq!(request("POST", &drain).status, 202);
    agent.wait_status("web", 4);
    assert!(agent.log().contains("write refused"), "refusals are logged");

    // With a token, writes need it, from loopback too.
    let guarded = Agent::start("node-t", &static_json, &[("SIDECAR_API_TOKEN", "s3cret")]);
    let id = guarded.wait_status("web", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();
    let drain = guarded.url(&format!("/api/services/{id}/drain"));
    assert_eq!(request("POST", &drain).status, 401);
    let wrong = request_with("POST", &drain, &[("Authorization", "Bearer nope")], "");
    assert_eq!(wrong.status, 401);
    let right = request_with("POST", &drain, &[("Authorization", "Bearer s3cret")], "");
    assert_eq!(right.status, 202);
    // Reads stay open for Sidecar's clients.
    assert_eq!(guarded.get("/api/services.json").status, 200);
}

#[test]
fn drain_is_accepted_and_sticks_against_alive() {
    let target = TestServer::start(200);
    let agent = Agent::start(
        "node-d",
        &web(target.port, "http://127.0.0.1:{{ tcp 10100 }}/"),
        &[("SIDECAR_HEALTH_INTERVAL", "200ms")],
    );
    let id = agent.wait_status("web", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();

    let r = request("POST", &agent.url(&format!("/api/services/{id}/drain")));
    assert_eq!(r.status, 202);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        format!(
            "{{\n  \"Message\": \"Service \\\"web\\\" instance \\\"{id}\\\" set to DRAINING\"\n}}"
        )
    );
    agent.wait_status("web", 4);
    // Checks keep passing (discovery says ALIVE) and the record stays DRAINING.
    let seen = target.requests().len();
    wait_for("three more passing checks", WAIT, || {
        (target.requests().len() >= seen + 3).then_some(())
    });
    let st = agent.get("/api/state.json").json();
    assert_eq!(st["Servers"]["node-d"]["Services"][&id]["Status"], 4);

    let r = request("POST", &agent.url("/api/services/nope/drain"));
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            404,
            r#"{"message":"Not Found - Service ID \"nope\" not found","status":"error"}"#
        )
    );
    // A failing check ends the drain; recovery is ALIVE, not DRAINING.
    target.set_status(503);
    agent.wait_status("web", 2);
    target.set_status(200);
    agent.wait_status("web", 0);
}

#[test]
fn listeners_get_every_change_with_the_full_state() {
    let url_listener = TestServer::start(500);
    let port_listener = TestServer::start(200);
    let svc = format!(
        r#"[{{"Service":{{"Name":"api","Ports":[]}},"Check":{{"Type":"AlwaysSuccessful"}},"ListenPort":{}}}]"#,
        port_listener.port
    );
    let listeners = format!("http://127.0.0.1:{}/update", url_listener.port);
    let agent = Agent::start("node-l", &svc, &[("LISTENERS_URLS", listeners.as_str())]);
    agent.wait_status("api", 0);

    // The failing listener is retried with the full body each time.
    let failed = wait_for("retries", WAIT, || {
        let r = url_listener.requests();
        (r.len() >= 3).then_some(r)
    });
    assert!(
        failed
            .iter()
            .all(|r| r.method == "POST" && r.path == "/update")
    );
    assert!(failed[0].body.len() > 50);
    assert_eq!(
        failed[1].body, failed[0].body,
        "retries resend the full body"
    );
    url_listener.set_status(200);

    let posts = wait_for("the ALIVE event on the ListenPort listener", WAIT, || {
        port_listener.requests().into_iter().find(|r| {
            serde_json::from_str::<Value>(&r.body).is_ok_and(|b| {
                b["ChangeEvent"]["PreviousStatus"] == 3
                    && b["ChangeEvent"]["Service"]["Status"] == 0
            })
        })
    });
    assert_eq!(posts.path, "/sidecar/update");
    let ct = posts
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    assert_eq!(ct.map(|(_, v)| v.as_str()), Some("application/json"));
    let cookie = posts
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("cookie"));
    assert!(
        cookie.is_some_and(|(_, v)| v.starts_with("sidecar-session-host=\"node-l-")),
        "{cookie:?}"
    );
    let body: Value = serde_json::from_str(&posts.body).expect("JSON body");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["ChangeEvent", "State"]);
    assert!(posts.body.starts_with("{\"State\":{\"Servers\":"));
    let ev = &body["ChangeEvent"];
    assert_eq!(ev["Service"]["Name"], "api");
    assert_eq!(ev["Service"]["Status"], 0);
    assert_eq!(ev["PreviousStatus"], 3);
    assert!(ev["Time"].is_string());
    let id = ev["Service"]["ID"].as_str().expect("id");
    assert_eq!(
        body["State"]["Servers"]["node-l"]["Services"][id]["Status"], 0,
        "the state shows the change"
    );
}

#[test]
fn watch_streams_a_document_on_connect_and_on_every_change() {
    let one = r#"{"Service":{"Name":"one"},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let two = r#"{"Service":{"Name":"two"},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let agent = Agent::start("node-w", &format!("[{one}]"), &[]);
    agent.wait_status("one", 0);

    let (mut stream, head) = JsonStream::open(&agent.url("/api/watch"), None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    let first: Value = serde_json::from_str(&stream.next_doc()).expect("json");
    assert_eq!(first["one"][0]["Status"], 0, "the by-service map: {first}");
    let (mut full, _) = JsonStream::open(&agent.url("/watch?by_service=false"), None);
    let state: Value = serde_json::from_str(&full.next_doc()).expect("json");
    assert!(state["Servers"]["node-w"].is_object());
    let (mut sse, head) = JsonStream::open(&agent.url("/api/watch"), Some("text/event-stream"));
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let ev: Value = serde_json::from_str(&sse.next_event()).expect("json event");
    assert!(ev["one"].is_array());

    agent.write_static(&format!("[{one},{two}]"));
    let mut found = false;
    for _ in 0..20 {
        let doc: Value = serde_json::from_str(&stream.next_doc()).expect("json");
        if doc.get("two").is_some() {
            found = true;
            break;
        }
    }
    assert!(found, "a document showing the new service arrived");
    let mut found = false;
    for _ in 0..20 {
        let doc: Value = serde_json::from_str(&sse.next_event()).expect("json");
        if doc.get("two").is_some() {
            found = true;
            break;
        }
    }
    assert!(found, "an SSE event showing the new service arrived");
}
