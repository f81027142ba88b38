//! Benchmark client: N concurrent `/api/watch` streams, one catalog change (a drain), and
//! how long each watcher took to receive the complete next document. Loopback only;
//! stops by itself.
//!
//! All streams are driven by one thread (tokio, current-thread), so the client costs
//! the shared two cores as little as possible: what is measured is the daemon fanning
//! a change out, not a thousand client threads being scheduled.
//!
//! Usage: bench-watchers HOST:PORT WATCHERS SERVICE_ID
//! Documents are counted by HTTP chunk: the server sends each one as a chunk.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, watch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench-watchers HOST:PORT WATCHERS SERVICE_ID");
        std::process::exit(2);
    }
    let n: usize = match args[2].parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("WATCHERS must be a positive number");
            std::process::exit(2);
        }
    };
    let runtime = sidecar_e2e::client_runtime();
    if let Err(e) = runtime.block_on(run(args[1].clone(), n, args[3].clone())) {
        eprintln!("bench-watchers: {e}");
        std::process::exit(1);
    }
}

async fn run(addr: String, n: usize, id: String) -> std::io::Result<()> {
    let ready = Arc::new(Barrier::new(n + 1));
    let (changed_tx, changed_rx) = watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        // Connected here, one after the other, as clients arriving over time would.
        let stream = TcpStream::connect(&addr).await?;
        let (addr, ready, changed) = (addr.clone(), ready.clone(), changed_rx.clone());
        tasks.push(tokio::spawn(watcher(stream, addr, ready, changed)));
    }
    ready.wait().await;
    let started = Instant::now();
    let _ = changed_tx.send(Some(started));
    let mut s = TcpStream::connect(&addr).await?;
    s.write_all(
        format!(
            "POST /api/services/{id}/drain HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp).await;
    if !resp.starts_with("HTTP/1.1 202") {
        return Err(std::io::Error::other(format!("drain: {resp}")));
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Some(d)) = t.await {
            lat.push(d);
        }
    }
    if lat.is_empty() {
        return Err(std::io::Error::other("no watcher saw the change"));
    }
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{{\"watchers\": {}, \"p50_ms\": {:.1}, \"p99_ms\": {:.1}, \"max_ms\": {:.1}}}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}

/// Reads the first document, waits at the barrier, then times the second.
async fn watcher(
    mut s: TcpStream,
    addr: String,
    ready: Arc<Barrier>,
    changed: watch::Receiver<Option<Instant>>,
) -> Option<Duration> {
    let mut waited = false;
    let result = read_two(&mut s, &addr, &ready, &mut waited, &changed).await;
    if let Err(e) = &result {
        eprintln!("watcher: {e}");
    }
    if !waited {
        ready.wait().await;
    }
    result.ok()
}

async fn read_two(
    s: &mut TcpStream,
    addr: &str,
    ready: &Barrier,
    waited: &mut bool,
    changed: &watch::Receiver<Option<Instant>>,
) -> std::io::Result<Duration> {
    s.write_all(format!("GET /api/watch HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = vec![0u8; 1 << 16];
    let mut head: Option<Vec<u8>> = Some(Vec::new());
    let mut chunks = Chunks::default();
    loop {
        let k = tokio::time::timeout(Duration::from_secs(120), s.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("no data for 120 s"))??;
        if k == 0 {
            return Err(std::io::Error::other(format!(
                "stream closed after {} documents",
                chunks.docs
            )));
        }
        let mut data = &buf[..k];
        if let Some(h) = head.as_mut() {
            h.extend_from_slice(data);
            let Some(pos) = h.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let rest = h.split_off(pos + 4);
            head = None;
            data = &[];
            chunks.feed(&rest);
        }
        chunks.feed(data);
        if chunks.docs >= 1 && !*waited {
            *waited = true;
            ready.wait().await;
        }
        if chunks.docs >= 2 {
            let t0 = (*changed.borrow()).ok_or_else(|| std::io::Error::other("no change"))?;
            return Ok(t0.elapsed());
        }
    }
}

/// Counts the documents of a chunked `/api/watch` response. The server sends each
/// document as one HTTP chunk, so a document is complete when its chunk is: the client
/// skips the body instead of scanning it, and measures the server, not its own parsing.
#[derive(Default)]
struct Chunks {
    /// Bytes of the current chunk's data (and its CRLF) still to come; `None` while
    /// reading a size line.
    left: Option<usize>,
    line: Vec<u8>,
    docs: usize,
}

impl Chunks {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.left {
                Some(left) => {
                    let k = left.min(bytes.len());
                    bytes = &bytes[k..];
                    self.left = Some(left - k);
                    if left - k == 0 {
                        self.left = None;
                    }
                    if left > 2 && left - k <= 2 {
                        self.docs += 1; // the data is in; only its CRLF may be missing
                    }
                }
                None => match bytes.iter().position(|&b| b == b'\n') {
                    Some(pos) => {
                        self.line.extend_from_slice(&bytes[..pos]);
                        bytes = &bytes[pos + 1..];
                        let text = String::from_utf8_lossy(&self.line);
                        let hex = text.trim().split(';').next().unwrap_or("");
                        let size = usize::from_str_radix(hex, 16).unwrap_or(0);
                        self.line.clear();
                        if size > 0 {
                            self.left = Some(size + 2);
                        }
                    }
                    None => {
                        self.line.extend_from_slice(bytes);
                        bytes = &[];
                    }
                },
            }
        }
    }
}
