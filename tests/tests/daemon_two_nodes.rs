//! Two agents: a static service on node B appears in node A's `/api/services.json` in
//! Sidecar's exact shape, through the cluster layer.

mod daemon_common;

use daemon_common::{Agent, WAIT};
use sidecar_e2e::wait_for;

#[test]
fn a_static_service_on_b_appears_on_a() {
    let b = Agent::start(
        "node-b",
        r#"[{"Service":{"Name":"inventory","Image":"shop/inventory:3","Ports":[{"Type":"tcp","Port":9300,"ServicePort":10300}]},"Check":{"Type":"AlwaysSuccessful"}}]"#,
        &[],
    );
    let on_b = b.wait_status("inventory", 0);
    let seed = format!("127.0.0.1:{}", b.gossip_port);
    let a = Agent::start("node-a", "[]", &[("SIDECAR_SEEDS", seed.as_str())]);
    let on_a = wait_for("node-b's service on node-a", WAIT, || {
        let doc = a.get("/api/services.json").json();
        doc["Services"]["inventory"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["Status"] == 0).cloned())
            .map(|s| (s, doc))
    });
    let (svc, doc) = on_a;
    assert_eq!(svc, on_b, "the record arrives unchanged, every field");
    assert_eq!(svc["Hostname"], "node-b");
    assert_eq!(
        svc["Ports"],
        serde_json::json!([{"Type":"tcp","Port":9300,"ServicePort":10300,"IP":"127.0.0.1"}])
    );
    assert_eq!(doc["ClusterMembers"]["node-b"]["ServiceCount"], 1);
    assert_eq!(doc["ClusterMembers"]["node-a"]["ServiceCount"], 0);
    let body = a.get("/api/services.json").body;
    assert!(
        body.starts_with("{\n  \"Services\": {\n    \"inventory\": [\n      {\n        \"ID\": ")
    );
}
