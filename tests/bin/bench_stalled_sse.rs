//! Benchmark client for scripts/bench-blast-http.sh: N Server-Sent-Events watchers that
//! never read (4 KiB receive buffers), catalog changes while they stall (drains), and
//! the daemon's resident memory (`/proc/PID/status`) before, during and at its peak.
//! Loopback only; stops by itself.
//!
//! Usage: bench-stalled-sse HOST:PORT CLIENTS DAEMON_PID SERVICE_ID...

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: bench-stalled-sse HOST:PORT CLIENTS DAEMON_PID SERVICE_ID...");
        std::process::exit(2);
    }
    let (Ok(n), Ok(pid)) = (args[2].parse::<usize>(), args[3].parse::<u32>()) else {
        eprintln!("CLIENTS and DAEMON_PID must be numbers");
        std::process::exit(2);
    };
    let runtime = sidecar_e2e::client_runtime();
    if let Err(e) = runtime.block_on(run(&args[1], n, pid, &args[4..])) {
        eprintln!("bench-stalled-sse: {e}");
        std::process::exit(1);
    }
}

fn memory(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let kb: u64 = l
                    .strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some(format!("{:.1} MB", kb as f64 / 1024.0))
            })
        })
        .unwrap_or_else(|| "?".into())
}

async fn request(addr: &str, req: String) -> std::io::Result<(String, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let status = resp.lines().next().unwrap_or_default().to_string();
    Ok((status, started.elapsed()))
}

async fn run(addr: &str, n: usize, pid: u32, ids: &[String]) -> std::io::Result<()> {
    let target: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
    println!(
        "daemon RSS before: {} (peak so far {})",
        memory(pid, "VmRSS"),
        memory(pid, "VmHWM")
    );
    let mut stalled = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let mut s = socket.connect(target).await?;
        s.write_all(
            format!("GET /api/watch HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "{n} stalled SSE watchers: RSS {} (peak {})",
        memory(pid, "VmRSS"),
        memory(pid, "VmHWM")
    );
    for id in ids {
        let (status, _) = request(
            addr,
            format!(
                "POST /api/services/{id}/drain HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        println!(
            "after drain {id} ({status}): RSS {} (peak {})",
            memory(pid, "VmRSS"),
            memory(pid, "VmHWM")
        );
    }
    let (status, took) = request(
        addr,
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await?;
    println!("/health while stalled: {status} in {took:?}");
    drop(stalled);
    Ok(())
}
