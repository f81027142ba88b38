//! A guest's stdout/stderr, captured into the daemon's log.
//!
//! Complete lines go to `tracing` as they are written, tagged `plugin = <name>` (stdout
//! at INFO, stderr at WARN), at most [`CALL_BUDGET`] bytes per call so a chatty plugin
//! cannot flood the log. The last [`TAIL`] bytes of stderr are kept so a trap's error
//! can quote the panic message. Writes never fail: a guest whose `println!` failed would
//! panic, turning log noise into a crash.

use bytes::Bytes;
use parking_lot::Mutex;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of output logged per call (per stream).
pub const CALL_BUDGET: usize = 64 * 1024;
/// Bytes of stderr kept for error messages.
pub const TAIL: usize = 2048;
/// Longest line logged; longer lines are split.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Clone)]
pub struct LogPipe {
    inner: Arc<Mutex<State>>,
}

struct State {
    plugin: Arc<str>,
    stream: Stream,
    line: Vec<u8>,
    budget: usize,
    truncated: bool,
    tail: Vec<u8>,
}

impl LogPipe {
    pub fn new(plugin: Arc<str>, stream: Stream) -> LogPipe {
        LogPipe {
            inner: Arc::new(Mutex::new(State {
                plugin,
                stream,
                line: Vec::new(),
                budget: CALL_BUDGET,
                truncated: false,
                tail: Vec::new(),
            })),
        }
    }

    /// Starts a call: fresh budget, empty tail.
    pub fn reset(&self) {
        let mut s = self.inner.lock();
        s.budget = CALL_BUDGET;
        s.truncated = false;
        s.tail.clear();
    }

    /// Ends a call: logs an unterminated last line and returns the tail (lossy UTF-8).
    pub fn finish(&self) -> String {
        let mut s = self.inner.lock();
        if !s.line.is_empty() {
            let line = std::mem::take(&mut s.line);
            s.emit(&line);
        }
        String::from_utf8_lossy(&s.tail).trim().to_string()
    }

    fn write(&self, bytes: &[u8]) {
        let mut s = self.inner.lock();
        s.tail.extend_from_slice(bytes);
        if s.tail.len() > TAIL {
            let cut = s.tail.len() - TAIL;
            s.tail.drain(..cut);
        }
        for &b in bytes {
            if b == b'\n' || s.line.len() >= MAX_LINE {
                let line = std::mem::take(&mut s.line);
                s.emit(&line);
                if b == b'\n' {
                    continue;
                }
            }
            s.line.push(b);
        }
    }
}

impl State {
    fn emit(&mut self, line: &[u8]) {
        if self.budget == 0 {
            if !self.truncated {
                self.truncated = true;
                tracing::warn!(plugin = %self.plugin, "plugin output over {CALL_BUDGET} bytes in one call; dropping the rest");
            }
            return;
        }
        self.budget = self.budget.saturating_sub(line.len() + 1);
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        match self.stream {
            Stream::Stdout => tracing::info!(plugin = %self.plugin, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(plugin = %self.plugin, stream = "stderr", "{text}"),
        }
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogPipe::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        LogPipe::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes_and_lines_split() {
        let pipe = LogPipe::new(Arc::from("t"), Stream::Stderr);
        pipe.write(b"first line\npanicked at src/lib.rs:1:1:\nboom");
        assert_eq!(
            pipe.finish(),
            "first line\npanicked at src/lib.rs:1:1:\nboom"
        );
        pipe.reset();
        pipe.write(&vec![b'x'; TAIL * 2]);
        assert_eq!(pipe.finish().len(), TAIL);
    }
}
