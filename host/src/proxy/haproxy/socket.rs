//! One command on an HAProxy CLI socket (master CLI or stats socket).
//!
//! HAProxy answers a non-interactive command and closes the connection, except the
//! master CLI after a failed reload, which keeps it open: reading stops at EOF, at the
//! caller's terminator, or at the deadline, whichever comes first.

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    #[error("cannot connect to {path}: {reason}")]
    Connect { path: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: no answer within {after:?}")]
    Timeout { path: String, after: Duration },
}

/// Sends `command` and returns the answer. `done` says when a partial answer is
/// complete (for sockets that stay open).
pub async fn ask(
    path: &Path,
    command: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<String, SocketError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| SocketError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let work = async {
        let mut stream = UnixStream::connect(path)
            .await
            .map_err(|e| SocketError::Connect {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(io)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if done(&String::from_utf8_lossy(&out)) {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(SocketError::Timeout {
            path: shown,
            after: timeout,
        }),
    }
}
