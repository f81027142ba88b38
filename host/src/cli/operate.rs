//! `sidecar services`, `drain`, `undrain` and `maint`: what an operator does to a running
//! agent, through its HTTP API (the agent's address and token from its own settings).

use super::api_client::Api;
use super::{InstanceArgs, MaintCommand, ServicesArgs};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Deserialize)]
struct ServicesDoc {
    #[serde(rename = "Services", default)]
    services: BTreeMap<String, Vec<Instance>>,
}

#[derive(Deserialize)]
struct Instance {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Hostname")]
    hostname: String,
    #[serde(rename = "Ports", default)]
    ports: Vec<Port>,
    #[serde(rename = "Updated", default)]
    updated: String,
    #[serde(rename = "Status")]
    status: i64,
}

#[derive(Deserialize)]
struct Port {
    #[serde(rename = "Port")]
    port: u16,
    #[serde(rename = "ServicePort", default)]
    service_port: u16,
    #[serde(rename = "IP", default)]
    ip: String,
}

pub fn services(args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let doc: ServicesDoc = Api::new(&args.client)?.get("/api/services.json")?;
    print!("{}", render_services(&doc, args.name.as_deref()));
    Ok(ExitCode::SUCCESS)
}

fn render_services(doc: &ServicesDoc, only: Option<&str>) -> String {
    let mut instances: Vec<&Instance> = doc
        .services
        .values()
        .flatten()
        .filter(|i| only.is_none_or(|n| i.name == n))
        .collect();
    instances.sort_by(|a, b| (&a.name, &a.hostname, &a.id).cmp(&(&b.name, &b.hostname, &b.id)));
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            let ports: Vec<String> = i
                .ports
                .iter()
                .map(|p| match p.service_port {
                    0 => format!("{}:{}", p.ip, p.port),
                    sp => format!("{}:{}->{sp}", p.ip, p.port),
                })
                .collect();
            vec![
                i.name.clone(),
                i.id.clone(),
                i.hostname.clone(),
                status_name(i.status),
                if ports.is_empty() {
                    "-".into()
                } else {
                    ports.join(",")
                },
                seconds(&i.updated),
            ]
        })
        .collect();
    super::table::render(
        &["NAME", "ID", "HOST", "STATUS", "PORTS", "UPDATED"],
        &rows,
        &[],
    )
}

fn status_name(code: i64) -> String {
    sidecar_catalog::Status::from_code(code)
        .map(|s| s.as_str().to_ascii_uppercase())
        .unwrap_or_else(|| format!("status {code}"))
}

/// An RFC 3339 time without its fraction of a second.
fn seconds(t: &str) -> String {
    match t.find('.') {
        Some(dot) => {
            let rest = &t[dot..];
            let end = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
            format!("{}{}", &t[..dot], &rest[end..])
        }
        None => t.to_string(),
    }
}

/// `POST /api/services/{id}/drain` or `/undrain`.
pub fn drain(args: &InstanceArgs, drain: bool) -> anyhow::Result<ExitCode> {
    let verb = if drain { "drain" } else { "undrain" };
    let path = format!("/api/services/{}/{verb}", encode_segment(&args.id));
    let body = Api::new(&args.client)?.post(&path, None)?;
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("Message").and_then(|m| m.as_str()).map(String::from));
    match message {
        Some(m) => println!("{m}"),
        None if drain => println!("instance {:?} set to DRAINING", args.id),
        None => println!("instance {:?} no longer DRAINING", args.id),
    }
    Ok(ExitCode::SUCCESS)
}

/// The maintenance document of `GET`/`POST /api/maintenance`.
#[derive(Deserialize)]
struct Maintenance {
    enabled: bool,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    since: Option<String>,
}

pub fn maint(cmd: &MaintCommand) -> anyhow::Result<ExitCode> {
    let doc: Maintenance = match cmd {
        MaintCommand::Status { client } => Api::new(client)?.get("/api/maintenance")?,
        MaintCommand::On { reason, client } => post_maintenance(client, true, reason)?,
        MaintCommand::Off { client } => post_maintenance(client, false, "")?,
    };
    println!("{}", describe(&doc));
    Ok(ExitCode::SUCCESS)
}

fn post_maintenance(
    client: &super::ClientArgs,
    enabled: bool,
    reason: &str,
) -> anyhow::Result<Maintenance> {
    let body = serde_json::json!({ "enabled": enabled, "reason": reason });
    let answer = Api::new(client)?.post("/api/maintenance", Some(&body))?;
    serde_json::from_slice(&answer)
        .map_err(|e| anyhow::anyhow!("unexpected answer from /api/maintenance: {e}"))
}

fn describe(m: &Maintenance) -> String {
    if !m.enabled {
        return "maintenance: off".to_string();
    }
    let since = m
        .since
        .as_deref()
        .map(|s| format!(" since {}", seconds(s)))
        .unwrap_or_default();
    let reason = if m.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", m.reason)
    };
    format!("maintenance: on{since}{reason} (every local service is DRAINING)")
}

/// A path segment, percent-encoded: IDs from a static file may hold any character.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_table_sorted_with_status_names_and_ports() {
        let doc: ServicesDoc = serde_json::from_str(
            r#"{"Services":{"web":[
                {"ID":"b2","Name":"web","Image":"nginx","Created":"2026-12-07T10:00:00Z","Hostname":"h2","Ports":[{"Type":"tcp","Port":32768,"ServicePort":8080,"IP":"10.0.0.7"}],"Updated":"2026-12-07T10:00:01.123456789Z","ProxyMode":"http","Status":4},
                {"ID":"a1","Name":"web","Image":"nginx","Created":"2026-12-07T10:00:00Z","Hostname":"h1","Ports":[],"Updated":"2026-12-07T10:00:02Z","ProxyMode":"http","Status":0}]},
              "ClusterName":"default"}"#,
        )
        .expect("json");
        let t = render_services(&doc, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(lines[1].contains("a1") && lines[1].contains("ALIVE"), "{t}");
        assert!(
            lines[2].contains("DRAINING")
                && lines[2].contains("10.0.0.7:32768->8080")
                && lines[2].ends_with("2026-12-07T10:00:01Z"),
            "{t}"
        );
        assert_eq!(render_services(&doc, Some("db")).lines().count(), 1);
    }

    #[test]
    fn maintenance_and_ids() {
        let m: Maintenance = serde_json::from_str(
            r#"{"enabled":true,"reason":"kernel upgrade","since":"2026-12-07T10:00:00.5Z"}"#,
        )
        .expect("json");
        assert_eq!(
            describe(&m),
            "maintenance: on since 2026-12-07T10:00:00Z: kernel upgrade (every local service is DRAINING)"
        );
        let m: Maintenance =
            serde_json::from_str(r#"{"enabled":false,"reason":"","since":null}"#).expect("json");
        assert_eq!(describe(&m), "maintenance: off");
        assert_eq!(encode_segment("ab-12_x.y"), "ab-12_x.y");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
