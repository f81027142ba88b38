//! Benchmark client: N concurrent `/api/watch` streams (one thread each), one catalog
//! change (a drain), and how long each watcher took to receive the complete next
//! document. Loopback only; stops by itself.
//!
//! Usage: bench-watchers HOST:PORT WATCHERS SERVICE_ID
//! Documents are found by brace depth (the benchmark catalog has no braces in strings).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench-watchers HOST:PORT WATCHERS SERVICE_ID");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let n: usize = args[2].parse().expect("WATCHERS is a number");
    let id = args[3].clone();
    let ready = Arc::new(Barrier::new(n + 1));
    let changed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        // Connected here, one after the other, as clients arriving over time would.
        let stream = TcpStream::connect(&addr).expect("connect");
        let (addr, ready, changed_at) = (addr.clone(), ready.clone(), changed_at.clone());
        handles.push(
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || watcher(stream, &addr, &ready, &changed_at))
                .expect("spawn"),
        );
    }
    ready.wait();
    let started = Instant::now();
    *changed_at.lock().expect("lock") = Some(started);
    let mut s = TcpStream::connect(&addr).expect("connect");
    write!(
        s,
        "POST /api/services/{id}/drain HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("drain");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 202"), "drain: {resp}");
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .filter_map(|h| h.join().ok().flatten())
        .collect();
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
}

/// Reads the first document, waits at the barrier, then times the second.
fn watcher(
    mut s: TcpStream,
    addr: &str,
    ready: &Barrier,
    changed_at: &Mutex<Option<Instant>>,
) -> Option<Duration> {
    let sent = s
        .set_read_timeout(Some(Duration::from_secs(120)))
        .and_then(|_| write!(s, "GET /api/watch HTTP/1.1\r\nHost: {addr}\r\n\r\n"));
    if let Err(e) = sent {
        eprintln!("watcher: {e}");
        ready.wait();
        return None;
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut head_done = false;
    let mut head = Vec::new();
    let (mut depth, mut started, mut docs) = (0i64, false, 0);
    let mut waited = false;
    loop {
        let k = match s.read(&mut buf) {
            Ok(0) => {
                eprintln!("watcher: stream closed after {docs} documents");
                if !waited {
                    ready.wait();
                }
                return None;
            }
            Err(e) => {
                eprintln!("watcher: {e} after {docs} documents");
                if !waited {
                    ready.wait();
                }
                return None;
            }
            Ok(k) => k,
        };
        let mut chunk = &buf[..k];
        if !head_done {
            head.extend_from_slice(chunk);
            let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            head_done = true;
            let rest = head.split_off(pos + 4);
            chunk = &[];
            count(&rest, &mut depth, &mut started, &mut docs);
        }
        count(chunk, &mut depth, &mut started, &mut docs);
        if docs >= 1 && !waited {
            waited = true;
            ready.wait();
        }
        if docs >= 2 {
            let t0 = (*changed_at.lock().ok()?)?;
            return Some(t0.elapsed());
        }
    }
}

/// Chunked framing is hex sizes and CRLFs: no braces, so counting them finds documents.
fn count(bytes: &[u8], depth: &mut i64, started: &mut bool, docs: &mut usize) {
    for &b in bytes {
        match b {
            b'{' => {
                *depth += 1;
                *started = true;
            }
            b'}' => {
                *depth -= 1;
                if *started && *depth == 0 {
                    *docs += 1;
                    *started = false;
                }
            }
            _ => {}
        }
    }
}
