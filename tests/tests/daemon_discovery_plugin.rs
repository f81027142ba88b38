//! The example discovery-source plugin (`plugins/discovery-http`) end to end: the agent
//! polls it, it GETs a list of services from an HTTP endpoint through its `http` grant,
//! and the agent announces them.

mod daemon_common;

use daemon_common::Agent;

#[test]
fn services_from_an_http_endpoint_are_announced() {
    // The endpoint serves a static.json-style list.
    let body = r#"[{"Service":{"Name":"from-plugin","Ports":[{"Type":"tcp","Port":7070,"ServicePort":17070}]},"Check":{"Type":"AlwaysSuccessful"}}]"#;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("static.json"), "[]").expect("write");
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!(
            r#"
[[discovery]]
plugin = "discovery-http"
interval = "1s"

[plugins.discovery-http]
settings = {{ url = "http://127.0.0.1:{port}/services.json" }}
grants = {{ http = ["127.0.0.1:{port}"] }}
"#
        ),
    )
    .expect("write plugins.toml");
    let plugins = dir.path().join("plugins.toml");
    let plugins = plugins.to_string_lossy().into_owned();
    let agent = Agent::start_in(dir, "node-p", &[("SIDECAR_PLUGINS_FILE", plugins.as_str())]);
    let svc = agent.wait_status("from-plugin", 0);
    assert_eq!(svc["Hostname"], "node-p");
    assert_eq!(
        svc["Ports"],
        serde_json::json!([{"Type":"tcp","Port":7070,"ServicePort":17070,"IP":"127.0.0.1"}])
    );
    assert_eq!(svc["ID"].as_str().map(str::len), Some(12));
}
