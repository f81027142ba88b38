//! `sidecar members`: asks a running agent for its member list and prints it.

use super::ClientArgs;
use super::api_client::Api;
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

pub fn run(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let list: List = Api::new(args)?.get("/api/members.json")?;
    print!("{}", render(&list));
    Ok(ExitCode::SUCCESS)
}

/// The member list as a table; this agent's own row is marked with `*`.
fn render(list: &List) -> String {
    let rows: Vec<Vec<String>> = list
        .members
        .iter()
        .map(|m| {
            vec![
                if m.local {
                    format!("{}*", m.name)
                } else {
                    m.name.clone()
                },
                m.address.clone(),
                m.state.clone(),
                m.incarnation.to_string(),
                m.generation.to_string(),
            ]
        })
        .collect();
    format!(
        "cluster {}\n{}",
        list.cluster_name,
        super::table::render(
            &["NAME", "ADDRESS", "STATE", "INCARNATION", "GENERATION"],
            &rows,
            &[false, false, false, true, true],
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_aligned_table_marking_ourselves() {
        let list: List = serde_json::from_str(
            r#"{"ClusterName":"default","Members":[{"Name":"n1","Address":"127.0.0.1:7946","State":"alive","Incarnation":0,"Generation":1765000000000,"Local":true},{"Name":"a-much-longer-node-name","Address":"[fd00::1234:5678:9abc]:7946","State":"suspect","Incarnation":12,"Generation":6,"Local":false}]}"#,
        )
        .expect("json");
        let t = render(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "cluster default");
        assert!(lines[1].starts_with("NAME "));
        assert!(lines[2].starts_with("n1* "));
        // Every column starts at the header's offset on every row.
        for col in ["ADDRESS", "STATE"] {
            let at = lines[1].find(col).expect("column");
            for l in &lines[2..] {
                assert_ne!(l.as_bytes()[at], b' ', "{col} in {l:?}");
                assert_eq!(l.as_bytes()[at - 1], b' ', "{col} in {l:?}");
            }
        }
        // Numbers are right-aligned under their headers.
        let end = lines[1].len();
        assert!(lines[2].ends_with("1765000000000") && lines[2].len() == end);
        assert!(lines[3].ends_with(" 6") && lines[3].len() == end);
    }
}
