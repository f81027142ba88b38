//! What a client can make the HTTP API cost, end to end: half-sent requests are cut at
//! the header timeout, idle keep-alive connections at the idle timeout, watchers and
//! connections over their caps get a 503 at once, and watchers that never read cannot
//! make the daemon hold a copy of the catalog each.

mod daemon_common;

use daemon_common::{Agent, JsonStream, WAIT, try_get};
use sidecar_e2e::wait_for;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

fn addr(agent: &Agent) -> String {
    agent
        .base
        .strip_prefix("http://")
        .expect("http base")
        .to_string()
}

fn connect(agent: &Agent) -> TcpStream {
    TcpStream::connect(addr(agent)).expect("connect to the API")
}

/// The sum of the samples of `name` (with `labels` inside the braces, if given).
fn metric(agent: &Agent, name: &str, labels: Option<&str>) -> f64 {
    let text = agent.get("/metrics").body;
    let prefix = match labels {
        Some(l) => format!("{name}{{{l}}} "),
        None => format!("{name} "),
    };
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

/// Reads until the socket is closed: `Ok(bytes)` on EOF, `Err` on a reset. The read
/// timeout only turns a hang into a failure.
fn read_until_closed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => Ok(buf),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the server did not close the connection: {e}")
        }
        Err(e) => Err(e),
    }
}

/// One response head (and the body when it has a `content-length`), read off a raw
/// socket that stays open.
fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("response head");
        assert!(n > 0, "closed before a response: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("response body");
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn get_on(s: &mut TcpStream, path: &str, extra: &str) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").as_bytes())
        .expect("send request");
}

#[test]
fn half_sent_requests_and_idle_connections_are_closed_while_others_are_served() {
    let agent = Agent::start(
        "limits-timeouts",
        "[]",
        &[
            ("SIDECAR_HTTP_HEADER_TIMEOUT", "1s"),
            ("SIDECAR_HTTP_IDLE_TIMEOUT", "2s"),
        ],
    );
    // Half a request: the request line and one header, then nothing.
    let mut slow = connect(&agent);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .expect("send half a request");
    // Opened and silent.
    let mut silent = connect(&agent);
    // A complete request on a kept-alive connection, then silence.
    let mut idle = connect(&agent);
    get_on(&mut idle, "/health", "");
    let (status, _, body) = read_response(&mut idle);
    assert_eq!(status, 200);
    assert!(body.contains(r#""status":"ok""#), "{body}");

    // Meanwhile the API answers everyone else.
    assert_eq!(agent.get("/health").status, 200);

    for (what, s) in [
        ("half-sent", &mut slow),
        ("silent", &mut silent),
        ("idle", &mut idle),
    ] {
        match read_until_closed(s) {
            Ok(bytes) => assert!(bytes.is_empty(), "{what}: no response expected: {bytes:?}"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ),
                "{what}: {e}"
            ),
        }
    }
    assert!(
        metric(
            &agent,
            "sidecar_http_connections_closed_total",
            Some("reason=\"header_timeout\"")
        ) >= 2.0
    );
    assert!(
        metric(
            &agent,
            "sidecar_http_connections_closed_total",
            Some("reason=\"idle_timeout\"")
        ) >= 1.0
    );
    assert_eq!(agent.get("/health").status, 200);
}

/// Opens `/api/watch` on a fresh connection; returns the socket and the response.
fn open_watch(agent: &Agent) -> (TcpStream, u16, String, String) {
    let mut s = connect(agent);
    get_on(&mut s, "/api/watch", "");
    let (status, head, body) = read_response(&mut s);
    (s, status, head, body)
}

#[test]
fn watchers_over_the_cap_get_a_503_until_one_leaves() {
    let agent = Agent::start(
        "limits-watchers",
        "[]",
        &[("SIDECAR_HTTP_MAX_WATCHERS", "3")],
    );
    let mut watchers: Vec<TcpStream> = (0..3)
        .map(|_| {
            let (s, status, head, _) = open_watch(&agent);
            assert_eq!(status, 200, "{head}");
            s
        })
        .collect();

    let (_refused, status, head, body) = open_watch(&agent);
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let err: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
    assert_eq!(err["status"], "error");
    let message = err["message"].as_str().expect("message");
    assert!(message.contains("too many watchers"), "{message}");
    // SSE clients share the cap.
    let r = daemon_common::request_with(
        "GET",
        &agent.url("/watch"),
        &[("Accept", "text/event-stream")],
        "",
    );
    assert_eq!(r.status, 503);
    assert!(metric(&agent, "sidecar_watchers_refused_total", None) >= 2.0);
    assert_eq!(metric(&agent, "sidecar_watchers", None), 3.0);

    // One leaves: the server notices and the slot is free again.
    drop(watchers.remove(0));
    let (s, _, _, _) = wait_for("a watcher slot to free up", WAIT, || {
        let w = open_watch(&agent);
        (w.1 == 200).then_some(w)
    });
    watchers.push(s);
    assert_eq!(metric(&agent, "sidecar_watchers", None), 3.0);
}

#[test]
fn connections_over_the_cap_are_closed_at_once_and_the_api_recovers() {
    let agent = Agent::start(
        "limits-connections",
        "[]",
        &[
            ("SIDECAR_HTTP_MAX_CONNECTIONS", "20"),
            ("SIDECAR_HTTP_HEADER_TIMEOUT", "10m"),
            ("SIDECAR_HTTP_IDLE_TIMEOUT", "10m"),
        ],
    );
    // Only our own scrape is open before the flood.
    wait_for("earlier connections to close", WAIT, || {
        (metric(&agent, "sidecar_http_connections", None) == 1.0).then_some(())
    });
    let mut conns: Vec<(TcpStream, Vec<u8>, bool)> = (0..40)
        .map(|_| {
            let s = connect(&agent);
            s.set_nonblocking(true).expect("nonblocking");
            (s, Vec::new(), false)
        })
        .collect();
    // The ones over the cap are answered and closed; the admitted ones stay open (their
    // timeouts are minutes away).
    let closed = wait_for("the connections over the cap to be closed", WAIT, || {
        let mut buf = [0u8; 512];
        for (s, got, closed) in conns.iter_mut().filter(|c| !c.2) {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        *closed = true;
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("a refused connection is closed, not reset: {e}"),
                }
            }
        }
        let n = conns.iter().filter(|c| c.2).count();
        (n >= 20).then_some(n)
    });
    assert!(
        closed <= 21,
        "at most the scrape's slot was still taken: {closed}"
    );
    for (_, got, _) in conns.iter().filter(|c| c.2) {
        let text = String::from_utf8_lossy(got);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(
            text.ends_with(r#"{"message":"too many connections","status":"error"}"#),
            "{text}"
        );
    }
    // The admitted ones leave; the API answers again.
    drop(conns);
    wait_for("the API to answer after the flood", WAIT, || {
        try_get(&agent.url("/health")).filter(|r| r.status == 200)
    });
    assert!(metric(&agent, "sidecar_http_connections_refused_total", None) >= 20.0);
}

/// `VmRSS` or `VmHWM` (peak) of `pid`, in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

fn services(n: usize, extra: usize) -> String {
    let one = |i: usize, name: &str| {
        format!(
            r#"{{"Service":{{"ID":"svc{i:06}","Name":"{name}","Image":"team/{name}:1.{i}","Ports":[{{"Type":"tcp","Port":{},"ServicePort":{}}}],"ProxyMode":"http"}},"Check":{{"Type":"AlwaysSuccessful","Args":""}}}}"#,
            20000 + i,
            10000 + i % 5000
        )
    };
    let mut all: Vec<String> = (0..n)
        .map(|i| one(i, &format!("service-{:04}", i % 500)))
        .collect();
    all.extend((0..extra).map(|j| one(n + j, &format!("extra-{j}"))));
    format!("[{}]", all.join(","))
}

#[test]
fn watchers_that_do_not_read_cost_no_copy_of_the_catalog_each() {
    const SERVICES: usize = 3000;
    const CLIENTS: usize = 150;
    let agent = Agent::start(
        "limits-stalled",
        &services(SERVICES, 0),
        &[
            ("SIDECAR_HEALTH_INTERVAL", "1h"),
            ("SIDECAR_HTTP_WRITE_TIMEOUT", "20s"),
        ],
    );
    wait_for("the catalog to load", WAIT * 2, || {
        (agent.instances().len() == SERVICES).then_some(())
    });
    let pid = agent.proc.0.id();
    let doc_len = {
        let (mut stream, _) = JsonStream::open(&agent.url("/api/watch"), None);
        stream.next_doc().len() as u64
    };
    let baseline = memory(pid, "VmRSS");

    // SSE clients with tiny receive buffers that never read a byte.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let target: std::net::SocketAddr = addr(&agent).parse().expect("socket address");
    let stalled: Vec<TcpStream> = runtime.block_on(async {
        let mut out = Vec::new();
        for _ in 0..CLIENTS {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
            let s = socket.connect(target).await.expect("connect");
            let mut s = s.into_std().expect("std stream");
            s.set_nonblocking(false).expect("blocking");
            s.write_all(
                b"GET /api/watch HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n",
            )
            .expect("send");
            out.push(s);
        }
        out
    });
    wait_for("every stalled client to be watching", WAIT, || {
        (metric(&agent, "sidecar_watchers", None) >= CLIENTS as f64).then_some(())
    });
    // Catalog changes while they stall: each is a new document for every watcher.
    for j in 1..=3 {
        agent.write_static(&services(SERVICES, j));
        wait_for(&format!("extra-{}", j - 1), WAIT, || {
            try_get(&agent.url(&format!("/api/services/extra-{}.json", j - 1)))
                .filter(|r| r.status == 200)
        });
    }
    assert_eq!(agent.get("/health").status, 200);
    let peak = memory(pid, "VmHWM");
    let grown = peak.saturating_sub(baseline);
    // A copy per client would be CLIENTS documents; shared documents are a handful.
    let bound = 20 * doc_len + (48 << 20);
    eprintln!(
        "{CLIENTS} stalled SSE watchers, {doc_len}-byte document: RSS peak {peak}, baseline \
         {baseline}, grown {grown} (bound {bound})"
    );
    assert!(
        grown < bound,
        "RSS grew {grown} bytes (peak {peak}, baseline {baseline}) with {CLIENTS} stalled \
         watchers of a {doc_len}-byte document; bound {bound}"
    );

    // Clients that never read are cut off at the write timeout.
    wait_for("the stalled watchers to be disconnected", WAIT * 2, || {
        (metric(
            &agent,
            "sidecar_http_connections_closed_total",
            Some("reason=\"write_timeout\""),
        ) >= CLIENTS as f64)
            .then_some(())
    });
    assert_eq!(metric(&agent, "sidecar_watchers", None), 0.0);
    drop(stalled);
    assert_eq!(agent.get("/health").status, 200);
}
