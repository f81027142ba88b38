//! DNS benchmark (scripts/bench-dns.sh): for each catalog size, a daemon with that many
//! static services and, when `../shared/tools/go-sidecar` is there, the Go sidecar-dns
//! reading the same catalog, then
//!
//! * queries/s and p50/p99 latency over UDP on loopback: one client thread keeping
//!   `BENCH_WINDOW` queries in flight for `BENCH_SECONDS`, the same mix of names (SRV and
//!   A names both servers know) sent to each server in turn; and `dnsperf`'s queries/s
//!   for the same mix when it is installed;
//! * change -> answer: a drain (POST) and how long until our SRV answer no longer holds
//!   the drained instance, polled back to back; and whether sidecar-dns's changed.
//!
//! Loopback only; every process it starts is killed when it ends.
//! Usage: bench-dns [SERVICES...]   (default: 10 10000)

use sidecar_e2e::dns::{self, has_label, head};
use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for, workspace_root};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "sidecar.local";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Some(port) = std::env::args()
        .nth(1)
        .filter(|a| a == "--udp-echo")
        .and_then(|_| std::env::args().nth(2))
        .and_then(|p| p.parse::<u16>().ok())
    {
        udp_echo(port);
        return;
    }
    let sizes: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![10, 10_000]
        } else {
            args
        }
    };
    let seconds = env_num("BENCH_SECONDS", 10);
    let window = env_num("BENCH_WINDOW", 64) as usize;
    let drains = env_num("BENCH_DRAINS", 100) as usize;
    println!("# bench-dns: {seconds} s per server, {window} queries in flight, one client thread");
    for n in sizes {
        if let Err(e) = run(n, seconds, window, drains) {
            eprintln!("bench-dns: {n} services: {e}");
            std::process::exit(1);
        }
    }
}

struct Svc {
    id: String,
    name: String,
}

/// The ceiling: a UDP server that does no DNS work at all (it sends each query back
/// with the response bit set), one blocking thread, one datagram per system call, as
/// the servers measured. Whatever a DNS server adds is on top of this.
fn udp_echo(port: u16) {
    let Ok(sock) = UdpSocket::bind(("127.0.0.1", port)) else {
        std::process::exit(1);
    };
    let mut buf = [0u8; 4096];
    while let Ok((n, peer)) = sock.recv_from(&mut buf) {
        if n > 2 {
            buf[2] |= 0x80;
        }
        let _ = sock.send_to(&buf[..n], peer);
    }
}

fn services(n: usize) -> Vec<Svc> {
    let names = (n / 4).max(1);
    (0..n)
        .map(|i| Svc {
            id: format!("svc{i:06}"),
            name: format!("service-{:04}", i % names),
        })
        .collect()
}

fn static_json(svcs: &[Svc]) -> String {
    let items: Vec<String> = svcs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                r#"{{"Service":{{"ID":"{}","Name":"{}","Image":"{}:1","Ports":[{{"Type":"tcp","Port":{},"ServicePort":8080,"IP":"127.1.{}.{}"}}],"ProxyMode":"http"}},"Check":{{"Type":"AlwaysSuccessful","Args":""}}}}"#,
                s.id,
                s.name,
                s.name,
                20000 + i % 40000,
                (i / 250) % 250,
                i % 250 + 1
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn srv_name(s: &Svc) -> String {
    format!("_8080._{}._tcp.{DOMAIN}", s.name)
}

fn a_name(s: &Svc) -> String {
    format!("8080.tcp.{}.{}.a.{DOMAIN}", s.name, s.id)
}

fn start_agent(dir: &Path, dns_port: u16, http_port: u16) -> KillOnDrop {
    let log = std::fs::File::create(dir.join("agent.log")).expect("log");
    KillOnDrop::spawn(
        Command::new(sidecar_bin())
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SIDECAR_NODE_NAME", "bench")
            .env("SIDECAR_ADVERTISE_IP", "127.0.0.1")
            .env("SIDECAR_BIND_IP", "127.0.0.1")
            .env("SIDECAR_BIND_PORT", free_port("127.0.0.1").to_string())
            .env("SIDECAR_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("SIDECAR_DNS_ADDR", format!("127.0.0.1:{dns_port}"))
            .env("SIDECAR_DISCOVERY", "static")
            .env("STATIC_CONFIG_FILE", dir.join("static.json"))
            .env("SIDECAR_HEALTH_INTERVAL", "1h")
            .env("HAPROXY_DISABLE", "true")
            .env("ENVOY_USE_GRPC_API", "false")
            .env("SIDECAR_LOGGING_LEVEL", "warn")
            .env(
                "SIDECAR_CACHE_DIR",
                workspace_root().join("target/e2e-plugin-cache"),
            )
            .stdout(Stdio::null())
            .stderr(log),
    )
}

fn start_sidecar_dns(dir: &Path, port: u16, http_port: u16) -> Option<KillOnDrop> {
    let bin = dns::sidecar_dns_bin()?;
    if !dns::sidecar_dns_port_free(Duration::from_secs(30)) {
        eprintln!("sidecar-dns: port 7780 is taken, not measured");
        return None;
    }
    let log = std::fs::File::create(dir.join("sidecar-dns.log")).ok()?;
    Some(KillOnDrop::spawn(
        Command::new(bin)
            .env_clear()
            .env("SDNS_DNS_PORT", port.to_string())
            .env(
                "SDNS_SIDECAR_STATE_URL",
                format!("http://127.0.0.1:{http_port}/api/state.json"),
            )
            .env("SDNS_BASE_DOMAIN", DOMAIN)
            .env("SDNS_TTL", "0")
            .env("SDNS_FORWARD_SERVERS", "127.0.0.1")
            .env("SDNS_LOGGING_LEVEL", "error")
            .stdout(Stdio::null())
            .stderr(log),
    ))
}

fn answered(server: SocketAddr, name: &str, qtype: u16) -> bool {
    dns::ask_udp(
        server,
        &dns::query(1, name, qtype, Some(1232)),
        Duration::from_millis(500),
    )
    .and_then(|r| head(&r))
    .is_some_and(|h| h.rcode == 0 && h.answers > 0)
}

fn run(n: usize, seconds: u64, window: usize, drains: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let svcs = services(n);
    std::fs::write(dir.path().join("static.json"), static_json(&svcs))
        .map_err(|e| e.to_string())?;
    let (dns_port, http_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let agent = start_agent(dir.path(), dns_port, http_port);
    let ours: SocketAddr = ([127, 0, 0, 1], dns_port).into();
    let last = svcs.last().ok_or("no services")?;
    let started = Instant::now();
    wait_for("every service in our DNS", Duration::from_secs(300), || {
        answered(ours, &a_name(last), dns::A).then_some(())
    });
    println!(
        "\n## {n} services ({} names): catalog in DNS {:.1} s after start",
        (n / 4).max(1),
        started.elapsed().as_secs_f64()
    );

    // Both servers get the same names: an SRV and an A for a spread of instances.
    let step = (n / 500).max(1);
    let mut queries = Vec::new();
    let mut text = String::new();
    for s in svcs.iter().step_by(step) {
        for (name, t, tn) in [(srv_name(s), dns::SRV, "SRV"), (a_name(s), dns::A, "A")] {
            queries.push(dns::query(0, &name, t, Some(1232)));
            text.push_str(&format!("{name} {tn}\n"));
        }
    }
    let qfile = dir.path().join("queries.txt");
    std::fs::write(&qfile, text).map_err(|e| e.to_string())?;

    let theirs_port = free_port("127.0.0.1");
    let theirs_addr: SocketAddr = ([127, 0, 0, 1], theirs_port).into();
    let theirs = start_sidecar_dns(dir.path(), theirs_port, http_port);
    if theirs.is_some() {
        wait_for("sidecar-dns answering", Duration::from_secs(120), || {
            answered(theirs_addr, &a_name(last), dns::A).then_some(())
        });
    }

    println!(
        "| server | queries/s | p50 | p99 | lost | server CPU | queries per CPU-second | dnsperf queries/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut servers = vec![("sidecar (ours)", ours, agent.id())];
    if let Some(t) = &theirs {
        servers.push(("sidecar-dns", theirs_addr, t.id()));
    }
    let echo_port = free_port("127.0.0.1");
    let echo = std::env::current_exe().ok().map(|exe| {
        KillOnDrop::spawn(
            Command::new(exe)
                .args(["--udp-echo", &echo_port.to_string()])
                .stdout(Stdio::null()),
        )
    });
    if let Some(e) = &echo {
        std::thread::sleep(Duration::from_millis(200));
        servers.push((
            "UDP echo, no DNS work (ceiling)",
            ([127, 0, 0, 1], echo_port).into(),
            e.id(),
        ));
    }
    let mut qps = Vec::new();
    for (label, addr, pid) in &servers {
        let cpu0 = cpu_seconds(*pid);
        let r = load(*addr, &queries, window, Duration::from_secs(seconds))?;
        let cpu = cpu_seconds(*pid) - cpu0;
        let per_cpu = if cpu > 0.0 {
            format!("{:.0}", r.count as f64 / cpu)
        } else {
            "-".into()
        };
        let perf = dnsperf(*addr, &qfile, seconds, window)
            .map(|q| format!("{q:.0}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {label} | {:.0} | {} | {} | {} | {:.0} % | {per_cpu} | {perf} |",
            r.qps,
            micros(r.p50),
            micros(r.p99),
            r.lost,
            100.0 * cpu / seconds as f64,
        );
        qps.push((r.qps, if cpu > 0.0 { r.count as f64 / cpu } else { 0.0 }));
    }
    if theirs.is_some() && qps.len() >= 2 && qps[1].0 > 0.0 && qps[1].1 > 0.0 {
        println!(
            "ours / sidecar-dns: {:.1}x the queries/s, {:.1}x the queries per CPU-second",
            qps[0].0 / qps[1].0,
            qps[0].1 / qps[1].1
        );
    }

    // Change -> answer.
    let k = drains.min(n);
    let mut lat = Vec::with_capacity(k);
    let spread = (n / k.max(1)).max(1);
    let mut first_drained: Option<&Svc> = None;
    for s in svcs.iter().step_by(spread).take(k) {
        let q = dns::query(2, &srv_name(s), dns::SRV, Some(1232));
        let t0 = Instant::now();
        drain(http_port, &s.id)?;
        loop {
            if let Some(r) = dns::ask_udp(ours, &q, Duration::from_millis(500))
                && !r.is_empty()
                && !has_label(&r, &s.id)
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!("{} still in DNS 10 s after its drain", s.id));
            }
        }
        lat.push(t0.elapsed());
        first_drained.get_or_insert(s);
    }
    lat.sort();
    println!(
        "change -> answer (drain POST sent -> first answer without the instance), {} drains: p50 {}, p99 {}, max {}",
        lat.len(),
        micros(pct(&lat, 0.50)),
        micros(pct(&lat, 0.99)),
        micros(lat.last().copied().unwrap_or_default())
    );
    if let (Some(_), Some(s)) = (&theirs, first_drained) {
        let r = dns::ask_udp(
            theirs_addr,
            &dns::query(3, &srv_name(s), dns::SRV, Some(1232)),
            Duration::from_secs(1),
        )
        .unwrap_or_default();
        println!(
            "sidecar-dns after the drains: {}",
            if has_label(&r, &s.id) {
                "still answers with the drained instances (start-up snapshot)"
            } else {
                "followed the drain"
            }
        );
    }
    Ok(())
}

/// User + system CPU time of a process so far (Linux, /proc).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime: fields 14 and 15 of the line, 11 and 12 from the state field.
    (ticks(11) + ticks(12)) / 100.0
}

struct LoadResult {
    count: usize,
    qps: f64,
    p50: Duration,
    p99: Duration,
    lost: u64,
}

/// Keeps `window` queries in flight over one UDP socket for `dur`; a query with no
/// answer within 1 s counts as lost and is replaced.
fn load(
    server: SocketAddr,
    queries: &[Vec<u8>],
    window: usize,
    dur: Duration,
) -> Result<LoadResult, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let mut sent: Vec<Option<Instant>> = vec![None; 65536];
    let mut next_id: u16 = 0;
    let mut next_q = 0usize;
    let mut send = |sock: &UdpSocket, sent: &mut Vec<Option<Instant>>| {
        let mut q = queries[next_q % queries.len()].clone();
        next_q += 1;
        next_id = next_id.wrapping_add(1);
        q[..2].copy_from_slice(&next_id.to_be_bytes());
        sent[next_id as usize] = Some(Instant::now());
        let _ = sock.send(&q);
    };
    for _ in 0..window {
        send(&sock, &mut sent);
    }
    let mut buf = vec![0u8; 65535];
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut lost = 0u64;
    let start = Instant::now();
    while start.elapsed() < dur {
        match sock.recv(&mut buf) {
            Ok(len) => {
                let Some(h) = head(&buf[..len]) else { continue };
                if let Some(t) = sent[h.id as usize].take() {
                    lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    send(&sock, &mut sent);
                }
            }
            Err(_) => {
                // Everything in flight is lost: start the window again.
                let outstanding = sent.iter().filter(|s| s.is_some()).count();
                lost += outstanding as u64;
                sent.iter_mut().for_each(|s| *s = None);
                for _ in 0..window {
                    send(&sock, &mut sent);
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let count = lat.len();
    lat.sort_unstable();
    let p = |q: f64| {
        Duration::from_micros(
            lat.get(((count as f64 * q) as usize).min(count.saturating_sub(1)))
                .copied()
                .unwrap_or(0) as u64,
        )
    };
    Ok(LoadResult {
        count,
        qps: count as f64 / elapsed,
        p50: p(0.50),
        p99: p(0.99),
        lost,
    })
}

/// dnsperf's queries/s for the same names, when it is installed.
fn dnsperf(server: SocketAddr, file: &Path, seconds: u64, window: usize) -> Option<f64> {
    let out = Command::new("dnsperf")
        .args([
            "-s",
            &server.ip().to_string(),
            "-p",
            &server.port().to_string(),
        ])
        .arg("-d")
        .arg(file)
        .args(["-l", &seconds.to_string(), "-c", "1", "-T", "1"])
        .args(["-q", &window.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with("Queries per second:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn drain(http_port: u16, id: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", http_port)).map_err(|e| e.to_string())?;
    let req = format!(
        "POST /api/services/{id}/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    if &head[9..12] != b"202" {
        return Err(format!("drain {id}: {}", String::from_utf8_lossy(&head)));
    }
    Ok(())
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}
