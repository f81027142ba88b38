//! The web UI as a person sees it, in headless Chromium driven over the DevTools
//! protocol: the services and their status appear, and the page follows catalog
//! changes without being reloaded.

mod daemon_common;

use daemon_common::{Agent, WAIT, request, try_get};
use serde_json::{Value, json};
use sidecar_e2e::{KillOnDrop, free_port, wait_for};
use std::net::TcpStream;
use std::process::Command;
use tungstenite::{Message, WebSocket};

struct DevTools {
    ws: WebSocket<TcpStream>,
    next_id: u64,
}

impl DevTools {
    fn connect(url: &str) -> DevTools {
        let addr = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("ws url");
        let stream = TcpStream::connect(addr).expect("connect to DevTools");
        let (ws, _) = tungstenite::client(url, stream).expect("websocket handshake");
        DevTools { ws, next_id: 1 }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(msg)).expect("send");
        loop {
            let m = self.ws.read().expect("read");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn chromium() -> (KillOnDrop, tempfile::TempDir, String) {
    let profile = tempfile::tempdir().expect("profile dir");
    let port = free_port("127.0.0.1");
    let proc = KillOnDrop::spawn(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                &format!("--remote-debugging-port={port}"),
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let ws = wait_for("Chromium's DevTools endpoint", WAIT * 4, || {
        let r = try_get(&format!("http://127.0.0.1:{port}/json/list"))?;
        let list: Value = serde_json::from_str(&r.body).ok()?;
        list.as_array()?
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
    });
    (proc, profile, ws)
}

#[test]
fn the_ui_shows_services_and_follows_changes_without_reload() {
    let one = r#"{"Service":{"Name":"checkout","Image":"shop/checkout:2.1","Ports":[{"Type":"tcp","Port":8080,"ServicePort":10200}]},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let two = r#"{"Service":{"Name":"payments","Image":"shop/payments:1.0"},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let agent = Agent::start("ui-node", &format!("[{one}]"), &[]);
    let id = agent.wait_status("checkout", 0)["ID"]
        .as_str()
        .expect("id")
        .to_string();

    let (_browser, _profile, ws) = chromium();
    let mut dt = DevTools::connect(&ws);
    dt.call("Page.navigate", json!({"url": agent.url("/")}));
    let text = wait_for("the service list", WAIT, || {
        let t = dt.text();
        (t.contains("checkout") && t.contains("Alive")).then_some(t)
    });
    assert!(text.contains("shop/checkout:2.1"), "{text}");
    assert!(
        text.contains("10200\u{2192}8080/tcp"),
        "ports as ServicePort->Port: {text}"
    );
    assert!(text.contains("ui-node"), "host and member shown: {text}");
    assert_eq!(
        dt.eval("location.pathname"),
        "/ui/",
        "/ redirected to the UI"
    );
    let colour = dt.eval(&format!(
        "getComputedStyle(document.querySelector('tr[data-id=\"{id}\"] .status')).backgroundColor"
    ));
    assert_eq!(colour, "rgb(46, 139, 58)", "ALIVE is green");
    wait_for("the live connection", WAIT, || {
        (dt.eval("document.getElementById('conn').className") == "live").then_some(())
    });

    // Mark this page load; a reload would lose the mark.
    dt.eval("window.__sameLoad = 42");
    agent.write_static(&format!("[{one},{two}]"));
    wait_for("the new service on the page", WAIT, || {
        dt.text().contains("payments").then_some(())
    });
    let r = request("POST", &agent.url(&format!("/api/services/{id}/drain")));
    assert_eq!(r.status, 202);
    wait_for("the drained status on the page", WAIT, || {
        dt.text().contains("Draining").then_some(())
    });
    assert_eq!(dt.eval("window.__sameLoad"), 42, "updated without a reload");
}
