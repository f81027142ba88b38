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

/// Saves a screenshot of the page as a test artefact (`target/e2e-artifacts/`).
fn screenshot(dt: &mut DevTools, name: &str) {
    use base64::Engine;
    let shot = dt.call("Page.captureScreenshot", json!({"format": "png"}));
    let data = shot["data"].as_str().expect("png data");
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    let dir = sidecar_e2e::workspace_root().join("target/e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

fn click(dt: &mut DevTools, selector: &str) {
    let ok = dt.eval(&format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"
    ));
    assert_eq!(ok, true, "nothing to click at {selector}");
}

#[test]
fn the_console_filters_shows_detail_and_drains_from_the_page() {
    let web = r#"{"Service":{"ID":"web-1","Name":"web","Image":"shop/web:3","Ports":[{"Type":"tcp","Port":8080,"ServicePort":10300}]},"Check":{"Type":"AlwaysSuccessful"}}"#;
    let down = r#"{"Service":{"ID":"db-1","Name":"db","Image":"shop/db:9","Ports":[{"Type":"tcp","Port":1,"ServicePort":10301}]},"Check":{"Type":"HttpGet","Args":"http://127.0.0.1:1/health"}}"#;
    let state = tempfile::tempdir().expect("state dir");
    let state_s = state.path().display().to_string();
    let agent = Agent::start(
        "console-node",
        &format!("[{web},{down}]"),
        &[("SIDECAR_STATE_DIR", state_s.as_str())],
    );
    agent.wait_status("web", 0);
    agent.wait_status("db", 2);

    let (_browser, _profile, ws) = chromium();
    let mut dt = DevTools::connect(&ws);
    dt.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );
    dt.call("Page.navigate", json!({"url": agent.url("/ui/")}));
    wait_for("both services and this node's member row", WAIT, || {
        let t = dt.text();
        (t.contains("web") && t.contains("db") && t.contains("(this node)")).then_some(())
    });
    let member_row =
        dt.eval("document.querySelector('tr[data-member=\"console-node\"]').innerText");
    let member_row = member_row.as_str().unwrap_or_default().to_string();
    assert!(member_row.contains("alive"), "member state: {member_row}");
    assert!(
        member_row.contains("127.0.0.1:"),
        "member address: {member_row}"
    );
    screenshot(&mut dt, "console-services");

    // Filters: by status, then by text.
    dt.eval("document.getElementById('status').value = '2'; document.getElementById('status').dispatchEvent(new Event('input'))");
    let visible =
        dt.eval("[...document.querySelectorAll('tr.inst')].map(r => r.dataset.id).join(',')");
    assert_eq!(visible, "db-1", "only the unhealthy instance");
    dt.eval("document.getElementById('status').value = ''; document.getElementById('q').value = 'shop/web'; document.getElementById('q').dispatchEvent(new Event('input'))");
    let visible =
        dt.eval("[...document.querySelectorAll('tr.inst')].map(r => r.dataset.id).join(',')");
    assert_eq!(visible, "web-1", "search matches the image");
    dt.eval("document.getElementById('q').value = ''; document.getElementById('q').dispatchEvent(new Event('input'))");

    // The failing instance's detail shows its last check and why it fails.
    click(&mut dt, "tr[data-id=\"db-1\"]");
    let check = wait_for("the check result in the detail", WAIT, || {
        let t = dt
            .eval("(document.getElementById('check') || {}).innerText || ''")
            .as_str()
            .unwrap_or_default()
            .to_string();
        t.to_lowercase().contains("refused").then_some(t)
    });
    assert!(check.contains("HttpGet"), "{check}");
    screenshot(&mut dt, "console-detail");

    // Drain from the page: the API's answer shows, and the row turns DRAINING live.
    dt.eval("window.__sameLoad = 7");
    click(&mut dt, "tr[data-id=\"web-1\"]");
    wait_for("the drain button", WAIT, || {
        (dt.eval("!!document.getElementById('drain')") == true).then_some(())
    });
    click(&mut dt, "#drain");
    wait_for("DRAINING in the row", WAIT, || {
        (dt.eval("document.querySelector('tr[data-id=\"web-1\"] .status').textContent")
            == "Draining")
            .then_some(())
    });
    // The row may turn before the POST's own answer lands (the event stream can be
    // faster than the response), so wait for the notice too rather than read it once.
    wait_for("the API's answer in the notice", WAIT, || {
        dt.eval("document.getElementById('notice').textContent")
            .as_str()
            .is_some_and(|n| n.contains("DRAINING"))
            .then_some(())
    });
    agent.wait_status("web", 4);
    click(&mut dt, "#undrain");
    agent.wait_status("web", 0);

    // Maintenance from the page.
    dt.eval("document.getElementById('maint-reason').value = 'disk swap'");
    click(&mut dt, "#maint-on");
    wait_for("the maintenance badge", WAIT, || {
        dt.text().contains("maintenance: disk swap").then_some(())
    });
    agent.wait_status("web", 4);
    screenshot(&mut dt, "console-maintenance");
    click(&mut dt, "#maint-off");
    agent.wait_status("web", 0);
    assert_eq!(
        dt.eval("window.__sameLoad"),
        7,
        "all of it without a reload"
    );
}
