//! Endpoint-only changes without a reload, through the runtime API (stats socket).
//!
//! When the new config differs from the running one only in `server` lines of
//! existing backends, the same change is made live: `add server` + `enable server`
//! for new servers, `set server ... addr` for moved ones, `state maint` + `del server`
//! for removed ones. The verified file is still installed, so it stays the source of
//! truth: a later reload loads exactly what runs (addresses are never left to the
//! server-state file, which loses runtime-set addresses on 2.6). Anything else
//! (a new backend, options on a server line, a backend using cookies, hostnames)
//! takes the reload path, and so does any command HAProxy refuses.
//!
//! A removed server that still has (idle, pooled) connections cannot be deleted on
//! 2.6; it stays in maintenance (no traffic) as a "parked" server until the next reload,
//! and is reused if the same server comes back.

use super::socket::{self, SocketError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
struct ServerLine {
    /// The whole line, trimmed.
    text: String,
    ip: IpAddr,
    port: u16,
    /// Only `server <name> <ip>:<port> [cookie <value>]`: what `add server` can
    /// reproduce on 2.6 (it refuses `cookie`, which is inert without a backend
    /// `cookie` directive).
    simple: bool,
}

#[derive(Debug, Default)]
struct Parsed {
    /// Every line that is not a server line of a backend.
    skeleton: Vec<String>,
    /// backend -> server name -> line (None: a server line we cannot read).
    backends: BTreeMap<String, BTreeMap<String, Option<ServerLine>>>,
    /// Backends with a `cookie` directive (their server cookies matter).
    with_cookie: Vec<String>,
}

fn parse_server(words: &[&str]) -> Option<ServerLine> {
    let addr = words.get(2)?;
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    let rest = &words[3..];
    let simple = rest.is_empty() || (rest.len() == 2 && rest[0] == "cookie");
    Some(ServerLine {
        text: words.join(" "),
        ip,
        port,
        simple,
    })
}

fn parse(config: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut backend: Option<String> = None;
    for line in config.lines() {
        let trimmed = line.trim();
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let starts_section = !line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if starts_section {
            backend = match words.first() {
                Some(&"backend") | Some(&"listen") => words.get(1).map(|s| s.to_string()),
                _ => None,
            };
            if let Some(b) = &backend {
                p.backends.entry(b.clone()).or_default();
            }
        }
        if let Some(b) = &backend
            && !starts_section
        {
            if words.first() == Some(&"server") && words.len() >= 3 {
                p.backends
                    .entry(b.clone())
                    .or_default()
                    .insert(words[1].to_string(), parse_server(&words));
                continue;
            }
            if words.first() == Some(&"cookie") {
                p.with_cookie.push(b.clone());
            }
        }
        p.skeleton.push(line.trim_end().to_string());
    }
    p
}

fn socket_addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The runtime API commands that turn `old` into `new`, or `None` when the change
/// needs a reload. An empty list: nothing to change in HAProxy.
pub fn plan(old: &str, new: &str, parked: &BTreeSet<String>) -> Option<Vec<String>> {
    let (o, n) = (parse(old), parse(new));
    if o.skeleton != n.skeleton || o.with_cookie != n.with_cookie {
        return None;
    }
    let mut cmds = Vec::new();
    for (backend, new_servers) in &n.backends {
        let old_servers = o.backends.get(backend)?;
        let cookies = n.with_cookie.contains(backend);
        for (name, new_line) in new_servers {
            let new_line = new_line.as_ref()?;
            match old_servers.get(name) {
                Some(old_line) => {
                    let old_line = old_line.as_ref()?;
                    if old_line == new_line {
                        continue;
                    }
                    if !(old_line.simple && new_line.simple) || cookies {
                        return None;
                    }
                    cmds.push(format!(
                        "set server {backend}/{name} addr {} port {}",
                        new_line.ip, new_line.port
                    ));
                }
                None => {
                    if !new_line.simple || cookies {
                        return None;
                    }
                    if parked.contains(&format!("{backend}/{name}")) {
                        cmds.push(format!(
                            "set server {backend}/{name} addr {} port {}",
                            new_line.ip, new_line.port
                        ));
                        cmds.push(format!("set server {backend}/{name} state ready"));
                    } else {
                        cmds.push(format!(
                            "add server {backend}/{name} {}",
                            socket_addr(new_line.ip, new_line.port)
                        ));
                        cmds.push(format!("enable server {backend}/{name}"));
                    }
                }
            }
        }
    }
    // Make before break: new servers are up before old ones leave, so a backend never
    // has zero servers in between.
    for (backend, new_servers) in &n.backends {
        for (name, old_line) in o.backends.get(backend)? {
            if !new_servers.contains_key(name) {
                old_line.as_ref()?;
                cmds.push(format!("set server {backend}/{name} state maint"));
                cmds.push(format!("del server {backend}/{name}"));
            }
        }
    }
    Some(cmds)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("HAProxy refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
}

/// True for the answers of the commands we send that mean success.
fn accepted(command: &str, answer: &str) -> bool {
    let a = answer.trim();
    if command.starts_with("add server") {
        return a.contains("New server registered");
    }
    if command.starts_with("del server") {
        return a.contains("Server deleted");
    }
    if command.starts_with("set server") && command.contains(" addr ") {
        return a.is_empty() || a.contains("changed") || a.contains("no need to change");
    }
    a.is_empty()
}

/// Sends the commands one by one; stops at the first refusal. Keeps `parked` up to
/// date: servers left in maintenance because they still had connections, and parked
/// servers brought back.
pub async fn apply(
    stats_socket: &Path,
    commands: &[String],
    parked: &mut BTreeSet<String>,
) -> Result<(), RuntimeError> {
    for command in commands {
        let answer = socket::ask(stats_socket, command, Duration::from_secs(2), |_| false).await?;
        let target = command.split_whitespace().nth(2).unwrap_or("").to_string();
        if command.starts_with("del server") && answer.contains("still has connections") {
            // In maintenance already: it gets no new traffic. Deleted at the next reload.
            parked.insert(target);
            continue;
        }
        if !accepted(command, &answer) {
            return Err(RuntimeError::Refused {
                command: command.clone(),
                answer: answer.trim().to_string(),
            });
        }
        if command.ends_with("state ready") {
            parked.remove(&target);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "global\n    daemon\n\nfrontend web-1\n    bind 127.0.0.1:1\n    default_backend web-1\n\nbackend web-1\n    mode http\n";

    fn cfg(servers: &[&str]) -> String {
        let mut s = BASE.to_string();
        for line in servers {
            s.push_str(&format!("    {line}\n"));
        }
        s
    }

    #[test]
    fn endpoint_changes_become_runtime_commands() {
        let old = cfg(&[
            "server h-a 10.0.0.1:80 cookie h-80",
            "server h-b 10.0.0.2:80 cookie h-80",
        ]);
        let new = cfg(&[
            "server h-b 10.0.0.9:81 cookie h-81",
            "server h-c 10.0.0.3:80 cookie h-80",
        ]);
        assert_eq!(
            plan(&old, &new, &BTreeSet::new()),
            Some(vec![
                "set server web-1/h-b addr 10.0.0.9 port 81".to_string(),
                "add server web-1/h-c 10.0.0.3:80".to_string(),
                "enable server web-1/h-c".to_string(),
                "set server web-1/h-a state maint".to_string(),
                "del server web-1/h-a".to_string(),
            ])
        );
        assert_eq!(plan(&old, &old, &BTreeSet::new()), Some(vec![]));
        let parked: BTreeSet<String> = ["web-1/h-c".to_string()].into();
        assert_eq!(
            plan(
                &old,
                &cfg(&[
                    "server h-a 10.0.0.1:80 cookie h-80",
                    "server h-b 10.0.0.2:80 cookie h-80",
                    "server h-c 10.0.0.3:80"
                ]),
                &parked
            ),
            Some(vec![
                "set server web-1/h-c addr 10.0.0.3 port 80".to_string(),
                "set server web-1/h-c state ready".to_string(),
            ])
        );
    }

    #[test]
    fn structural_changes_need_a_reload() {
        let old = cfg(&["server h-a 10.0.0.1:80"]);
        // A new backend.
        let new = format!("{}\nbackend other\n    server x 10.0.0.1:1\n", old);
        assert_eq!(plan(&old, &new, &BTreeSet::new()), None);
        // Options add server cannot reproduce.
        assert_eq!(
            plan(
                &old,
                &cfg(&["server h-a 10.0.0.1:80", "server h-b 10.0.0.2:80 check"]),
                &BTreeSet::new()
            ),
            None
        );
        // Hostnames.
        assert_eq!(
            plan(&old, &cfg(&["server h-a web.example:80"]), &BTreeSet::new()),
            None
        );
        // Cookies in use.
        let with_cookie = |s: &str| cfg(&["cookie SRV insert", s]);
        assert_eq!(
            plan(
                &with_cookie("server h-a 10.0.0.1:80"),
                &with_cookie("server h-b 10.0.0.2:80"),
                &BTreeSet::new()
            ),
            None
        );
    }

    #[test]
    fn answers() {
        assert!(accepted(
            "add server a/b 1.2.3.4:5",
            "New server registered.\n\n"
        ));
        assert!(!accepted(
            "add server a/b 1.2.3.4:5",
            "Already exists a server with the same name in backend.\n"
        ));
        assert!(accepted("del server a/b", "Server deleted.\n"));
        assert!(!accepted(
            "del server a/b",
            "Server still has connections attached to it, cannot remove it.\n"
        ));
        assert!(accepted("enable server a/b", "\n"));
        assert!(!accepted("enable server a/b", "No such server.\n"));
        assert!(accepted(
            "set server a/b addr 1.2.3.4 port 5",
            "IP changed from '1.1.1.1' to '1.2.3.4', port changed from '1' to '5' by 'stats socket command'\n"
        ));
    }
}
