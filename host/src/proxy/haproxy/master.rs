//! The master CLI (`-S <socket>`): reload and `show proc`, which is how a reload is
//! confirmed on HAProxy 2.6 (its `reload` command answers nothing).

use super::socket::{self, SocketError};
use std::path::Path;
use std::time::Duration;

const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The master's view of its processes (`show proc`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcList {
    pub master_pid: u32,
    /// Reloads since the master started, failed ones included.
    pub reloads: u32,
    /// Failed reloads since the last good one (2.6: `[failed: N]`).
    pub failed: u32,
    /// The current workers' pids.
    pub workers: Vec<u32>,
}

/// Parses `show proc` output. `None` when the master line is missing.
pub fn parse_show_proc(text: &str) -> Option<ProcList> {
    let mut list = ProcList::default();
    let mut found_master = false;
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('#') {
            section = match rest.trim() {
                "workers" => "workers",
                "old workers" => "old",
                "programs" => "programs",
                _ => section,
            };
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let Ok(pid) = fields[0].parse::<u32>() else {
            continue;
        };
        match fields[1] {
            "master" => {
                found_master = true;
                list.master_pid = pid;
                list.reloads = fields[2].parse().unwrap_or(0);
                if let Some(i) = line.find("[failed:") {
                    list.failed = line[i + 8..]
                        .trim_start()
                        .split(']')
                        .next()
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0);
                }
            }
            "worker" if section == "workers" => list.workers.push(pid),
            _ => {}
        }
    }
    found_master.then_some(list)
}

fn complete(text: &str) -> bool {
    // The listing ends with the (possibly empty) programs section and a blank line.
    text.contains("# programs") && text.ends_with("\n\n")
}

/// The master re-executes itself after starting workers (2.5+ frees its config memory
/// that way), and its CLI refuses or resets connections for a moment: retry those for
/// a while.
const RETRY_FOR: Duration = Duration::from_secs(1);

async fn ask(
    master_socket: &Path,
    command: &str,
    done: fn(&str) -> bool,
) -> Result<String, SocketError> {
    let deadline = tokio::time::Instant::now() + RETRY_FOR;
    loop {
        match socket::ask(master_socket, command, ASK_TIMEOUT, done).await {
            Err(SocketError::Connect { .. } | SocketError::Io { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => return other,
        }
    }
}

pub async fn show_proc(master_socket: &Path) -> Result<ProcList, SocketError> {
    let text = ask(master_socket, "show proc", complete).await?;
    parse_show_proc(&text).ok_or_else(|| SocketError::Io {
        path: master_socket.display().to_string(),
        reason: format!("unexpected `show proc` answer: {text:?}"),
    })
}

/// Asks the master to reload (re-read the config file, start new workers).
pub async fn reload(master_socket: &Path) -> Result<(), SocketError> {
    // 2.6 answers nothing and closes; newer versions print a status.
    ask(master_socket, "reload", |_| false).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
1605            master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4\n\
# workers\n\
1713            worker          0               0d00h00m00s     2.6.12-1+deb12u4\n\
# old workers\n\
1607            worker          1               0d00h00m01s     2.6.12-1+deb12u4\n\
# programs\n\n";

    #[test]
    fn parses_haproxy_26_show_proc() {
        let p = parse_show_proc(OK).expect("parses");
        assert_eq!(p.master_pid, 1605);
        assert_eq!(p.reloads, 1);
        assert_eq!(p.failed, 0);
        assert_eq!(p.workers, vec![1713]);
        assert!(complete(OK));
        let failed = OK.replace("1 [failed: 0]", "2 [failed: 1]");
        assert_eq!(parse_show_proc(&failed).expect("parses").failed, 1);
        assert_eq!(parse_show_proc("garbage"), None);
    }
}
