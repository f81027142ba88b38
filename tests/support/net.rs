//! Traffic for proxy tests: backends that answer with their own name (and a health
//! endpoint the test can flip), and one-shot HTTP and TCP clients over plain sockets,
//! so a test sees exactly which backend a proxy chose.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A backend that answers `GET /health` with 200 or 500 (flippable) and anything else
/// (HTTP, or a line over raw TCP) with its name.
pub struct Backend {
    pub port: u16,
    pub healthy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(true));
        let (name, flag, h) = (name.to_string(), stop.clone(), healthy.clone());
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (name, h) = (name.clone(), h.clone());
                        std::thread::spawn(move || serve(conn, &name, &h));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend {
            port,
            healthy,
            stop,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, name: &str, healthy: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !(buf.windows(4).any(|w| w == b"\r\n\r\n")
            || (buf.ends_with(b"\n") && !buf.starts_with(b"GET")))
        {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let reply = if buf.starts_with(b"GET /health") {
            let ok = healthy.load(Ordering::Relaxed);
            let (code, body) = if ok {
                ("200 OK", "ok")
            } else {
                ("500 Oops", "sick")
            };
            format!(
                "HTTP/1.1 {code}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else if buf.starts_with(b"GET") {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                name.len()
            )
        } else {
            format!("{name}\n")
        };
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
        buf.clear();
    }
}

/// `GET /` on a new connection: `(status, body)`, or `None` if nothing answers.
pub fn http_get(ip: &str, port: u16) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

/// A line over raw TCP; the answer's first line.
pub fn tcp_line(ip: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"hello\n").ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

/// Backend names answering over `n` new connections.
pub fn seen(ip: &str, port: u16, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .filter_map(|_| http_get(ip, port))
        .filter(|(c, _)| *c == 200)
        .map(|(_, b)| b)
        .collect();
    v.sort();
    v.dedup();
    v
}
