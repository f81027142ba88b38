//! `sidecar members`: asks a running agent for its member list and prints it.

use super::MembersArgs;
use serde::Deserialize;
use std::process::ExitCode;

#[derive(Deserialize)]
struct List {
    #[serde(rename = "ClusterName")]
    cluster_name: String,
    #[serde(rename = "Members")]
    members: Vec<Member>,
}

#[derive(Deserialize)]
struct Member {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Address")]
    address: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Incarnation")]
    incarnation: u32,
    #[serde(rename = "Generation")]
    generation: u64,
    #[serde(rename = "Local")]
    local: bool,
}

pub fn run(args: MembersArgs) -> anyhow::Result<ExitCode> {
    let url = format!("http://{}/api/members.json", args.http_addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .get(&url)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?;
        resp.text().await
    });
    let body = body.map_err(|e| anyhow::anyhow!("cannot query {url}: {e}"))?;
    let list: List = serde_json::from_str(&body)
        .map_err(|e| anyhow::anyhow!("unexpected answer from {url}: {e}"))?;
    print!("{}", render(&list));
    Ok(ExitCode::SUCCESS)
}

fn render(list: &List) -> String {
    let mut out = format!("cluster {}\n", list.cluster_name);
    let w = list
        .members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<w$}  {:<22}  {:<8}  {:>11}  {:>13}\n",
        "NAME", "ADDRESS", "STATE", "INCARNATION", "GENERATION"
    ));
    for m in &list.members {
        let name = if m.local {
            format!("{}*", m.name)
        } else {
            m.name.clone()
        };
        out.push_str(&format!(
            "{:<w$}  {:<22}  {:<8}  {:>11}  {:>13}\n",
            name, m.address, m.state, m.incarnation, m.generation
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_table_marking_ourselves() {
        let list: List = serde_json::from_str(
            r#"{"ClusterName":"default","Members":[{"Name":"n1","Address":"127.0.0.1:7946","State":"alive","Incarnation":0,"Generation":5,"Local":true},{"Name":"n2","Address":"127.0.0.2:7946","State":"dead","Incarnation":2,"Generation":6,"Local":false}]}"#,
        )
        .expect("json");
        let t = render(&list);
        assert!(t.contains("n1*"));
        assert!(t.lines().nth(3).is_some_and(|l| l.contains("dead")));
    }
}
