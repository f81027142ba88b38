//! The DNS interface end to end: the built daemon with static services, asked by the
//! real `dig` (Debian's bind9-dnsutils) over UDP and TCP, by `sidecar dns lookup`, and
//! compared with the Go `sidecar-dns` on the same catalog. Loopback only.

mod daemon_common;

use daemon_common::{Agent, request};
use sidecar_e2e::dns::{self, ask_udp, head};
use sidecar_e2e::{KillOnDrop, free_port, sidecar_bin, wait_for};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "sidecar.local";

fn service(id: &str, name: &str, kind: &str, port: u16, sp: u16, ip: &str) -> String {
    format!(
        r#"{{"Service":{{"ID":"{id}","Name":"{name}","Image":"{name}:1","Ports":[{{"Type":"{kind}","Port":{port},"ServicePort":{sp},"IP":"{ip}"}}],"ProxyMode":"http"}},"Check":{{"Type":"AlwaysSuccessful","Args":""}}}}"#
    )
}

/// web: two instances on 8080 (different IPs); dns_svc: one UDP port; big: `big` instances.
fn catalog(big: usize) -> String {
    let mut items = vec![
        service("abc123", "web", "tcp", 32768, 8080, "127.0.0.10"),
        service("def456", "web", "tcp", 32770, 8080, "127.0.0.11"),
        service("udp1", "dns_svc", "udp", 5353, 53, "127.0.0.14"),
    ];
    for i in 0..big {
        items.push(service(
            &format!("big{i:03}"),
            "big",
            "tcp",
            20000 + i as u16,
            9000,
            &format!("127.0.1.{}", i + 1),
        ));
    }
    format!("[{}]", items.join(","))
}

struct Dns {
    agent: Agent,
    port: u16,
}

impl Dns {
    fn start(big: usize, env: &[(&str, &str)]) -> Dns {
        let port = free_port("127.0.0.1");
        let addr = format!("127.0.0.1:{port}");
        let mut all = vec![
            ("SIDECAR_DNS_ADDR", addr.as_str()),
            ("SIDECAR_HEALTH_INTERVAL", "200ms"),
        ];
        all.extend_from_slice(env);
        let agent = Agent::start("node-a", &catalog(big), &all);
        for id in ["abc123", "def456"] {
            wait_for(&format!("{id} alive"), Duration::from_secs(30), || {
                agent
                    .instances()
                    .into_iter()
                    .find(|s| s["ID"] == id && s["Status"] == 0)
            });
        }
        let dns = Dns { agent, port };
        wait_for("web in DNS", Duration::from_secs(10), || {
            (dns.short(&["web.service.sidecar.local", "A"]).len() == 2).then_some(())
        });
        dns
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// dig's full output.
    fn dig(&self, args: &[&str]) -> String {
        dig(self.port, args)
    }

    /// dig +short, as a sorted set of lines.
    fn short(&self, args: &[&str]) -> BTreeSet<String> {
        let mut a = vec!["+short"];
        a.extend_from_slice(args);
        lines(&self.dig(&a))
    }
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            "+norec",
            "+time=2",
            "+tries=1",
            "-p",
            &port.to_string(),
            "@127.0.0.1",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run dig ({e}): install bind9-dnsutils (scripts/setup.sh setup_dns_tools)"
            )
        });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(String::from)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn metric(agent: &Agent, prefix: &str) -> f64 {
    let body = agent.get("/metrics").body;
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn dig_resolves_every_name_shape_over_udp_and_tcp() {
    let d = Dns::start(0, &[]);
    for transport in ["+notcp", "+tcp"] {
        // sidecar-dns's names.
        assert_eq!(
            d.short(&[transport, "_8080._web._tcp.sidecar.local", "SRV"]),
            set(&[
                "0 10 32768 8080.tcp.web.abc123.a.sidecar.local.",
                "0 10 32770 8080.tcp.web.def456.a.sidecar.local."
            ]),
            "{transport}"
        );
        assert_eq!(
            d.short(&[transport, "8080.tcp.web.abc123.a.sidecar.local", "A"]),
            set(&["127.0.0.10"])
        );
        assert_eq!(
            d.short(&[transport, "_53._dns_svc._udp.sidecar.local", "SRV"]),
            set(&["0 10 5353 53.udp.dns_svc.udp1.a.sidecar.local."])
        );
        assert_eq!(
            d.short(&[transport, "_8080._web._tcp.sidecar.local", "TXT"]),
            set(&["\"Sidecar service web port 8080\""])
        );
        // Consul's.
        assert_eq!(
            d.short(&[transport, "web.service.sidecar.local", "A"]),
            set(&["127.0.0.10", "127.0.0.11"])
        );
        let srv = set(&[
            "1 1 32768 8080.tcp.web.abc123.a.sidecar.local.",
            "1 1 32770 8080.tcp.web.def456.a.sidecar.local.",
        ]);
        assert_eq!(
            d.short(&[transport, "web.service.sidecar.local", "SRV"]),
            srv
        );
        assert_eq!(
            d.short(&[transport, "_web._tcp.service.sidecar.local", "SRV"]),
            srv
        );
        assert_eq!(
            d.short(&[transport, "8080.web.service.sidecar.local", "SRV"]),
            srv
        );
        // Members.
        assert_eq!(
            d.short(&[transport, "node-a.node.sidecar.local", "A"]),
            set(&["127.0.0.1"])
        );
    }
    // Authoritative, case-insensitive, glue for the SRV targets, EDNS echoed.
    let full = d.dig(&["WEB.Service.Sidecar.Local", "SRV"]);
    assert!(full.contains("status: NOERROR"), "{full}");
    assert!(full.contains("flags: qr aa;"), "{full}");
    assert!(
        full.contains("ADDITIONAL: 3"),
        "two glue records and OPT: {full}"
    );
    assert!(
        full.contains("8080.tcp.web.abc123.a.sidecar.local. 0 IN A\t127.0.0.10"),
        "{full}"
    );
    assert!(full.contains("; EDNS: version: 0"), "{full}");
    // The TTL is the setting (0 by default).
    assert!(
        d.dig(&["+noall", "+answer", "web.service.sidecar.local", "A"])
            .lines()
            .all(|l| l.split_whitespace().nth(1) == Some("0"))
    );
    // Answers rotate: successive queries start with different records.
    let firsts: BTreeSet<String> = (0..8)
        .map(|_| {
            d.dig(&["+short", "web.service.sidecar.local", "A"])
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "rotation: {firsts:?}");

    // `sidecar dns lookup` without dig.
    let out = Command::new(sidecar_bin())
        .args(["dns", "lookup", "_8080._web._tcp.sidecar.local", "srv"])
        .env("SIDECAR_DNS_ADDR", d.addr().to_string())
        .output()
        .expect("sidecar dns lookup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(";; NOERROR  flags: qr aa rd  answers: 2"),
        "{text}"
    );
    assert!(
        text.contains("IN SRV 0 10 32768 8080.tcp.web.abc123.a.sidecar.local."),
        "{text}"
    );
    let out = Command::new(sidecar_bin())
        .args([
            "dns",
            "lookup",
            "--server",
            &d.addr().to_string(),
            "nope.sidecar.local",
        ])
        .output()
        .expect("sidecar dns lookup");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(";; NXDOMAIN"));
}

#[test]
fn negative_answers_truncation_and_bad_queries() {
    let d = Dns::start(60, &[("SIDECAR_DNS_TTL", "3")]);
    wait_for("big in DNS", Duration::from_secs(30), || {
        (d.short(&["+tcp", "big.service.sidecar.local", "SRV"]).len() == 60).then_some(())
    });
    // NXDOMAIN and NODATA, both with the SOA (its minimum is the TTL).
    let nx = d.dig(&["nope.web.service.sidecar.local", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("AUTHORITY: 1"), "{nx}");
    assert!(
        nx.contains("sidecar.local.\t\t3\tIN\tSOA\tns.sidecar.local. hostmaster.sidecar.local."),
        "{nx}"
    );
    let nodata = d.dig(&["web.service.sidecar.local", "MX"]);
    assert!(nodata.contains("status: NOERROR"), "{nodata}");
    assert!(nodata.contains("ANSWER: 0, AUTHORITY: 1"), "{nodata}");
    let ent = d.dig(&["service.sidecar.local", "A"]);
    assert!(ent.contains("status: NOERROR"), "empty non-terminal: {ent}");
    // Outside the domain, no recursors: refused, never forwarded.
    assert!(d.dig(&["example.com", "A"]).contains("status: REFUSED"));

    // Truncation: over UDP without EDNS the answer is cut at 512 bytes with TC...
    let udp = d.dig(&["+noedns", "+ignore", "big.service.sidecar.local", "SRV"]);
    assert!(udp.contains("flags: qr aa tc;"), "{udp}");
    // ... and dig, seeing TC, asks again over TCP and gets all of it.
    let retried = d.dig(&["+noedns", "big.service.sidecar.local", "SRV"]);
    assert!(
        retried.contains("Truncated, retrying in TCP mode"),
        "{retried}"
    );
    assert!(retried.contains("ANSWER: 60"), "{retried}");
    // EDNS raises the UDP limit to 1232 bytes.
    let q = dns::query(7, "big.service.sidecar.local", dns::SRV, Some(4096));
    let resp = ask_udp(d.addr(), &q, Duration::from_secs(2)).expect("answer");
    assert!(resp.len() > 512 && resp.len() <= 1232, "{}", resp.len());
    assert!(head(&resp).expect("head").truncated);

    // Bad queries: error codes, counted, never a crash.
    assert!(
        d.dig(&["-c", "CH", "version.bind", "TXT"])
            .contains("status: REFUSED")
    );
    assert!(
        d.dig(&["+tcp", "sidecar.local", "AXFR"])
            .contains("Transfer failed"),
        "no zone transfers"
    );
    let mut long = dns::query(9, "x.sidecar.local", dns::A, None);
    // A 300-byte name: five 60-byte labels.
    let mut name = Vec::new();
    for _ in 0..5 {
        name.push(60u8);
        name.extend_from_slice(&[b'a'; 60]);
    }
    name.push(0);
    long.splice(12..12 + 17, name);
    let resp = ask_udp(d.addr(), &long, Duration::from_secs(2)).expect("FORMERR");
    assert_eq!(head(&resp).map(|h| h.rcode), Some(1), "FORMERR");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..2000 {
        let len = 12 + (i % 300);
        let pkt: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        // Every other one with a plausible header (a query, one question), so that the
        // garbage reaches the parser.
        let mut pkt = pkt;
        if i % 2 == 0 {
            pkt[2] &= 0x07;
            pkt[4..6].copy_from_slice(&[0, 1]);
        }
        let _ = sock.send_to(&pkt, d.addr());
    }
    for pkt in [&[][..], &[0u8; 5][..]] {
        let _ = sock.send_to(pkt, d.addr());
    }
    // Still answering, and the garbage is in /metrics.
    assert_eq!(
        d.short(&["web.service.sidecar.local", "A"]),
        set(&["127.0.0.10", "127.0.0.11"])
    );
    assert!(
        metric(
            &d.agent,
            "sidecar_dns_bad_queries_total{reason=\"malformed\"}"
        ) > 0.0
    );
    assert!(
        metric(
            &d.agent,
            "sidecar_dns_bad_queries_total{reason=\"name_too_long\"}"
        ) >= 1.0
    );
    assert!(metric(&d.agent, "sidecar_dns_bad_queries_total{reason=\"class\"}") >= 1.0);
    for reason in ["opcode", "not_a_query"] {
        let line = format!("sidecar_dns_bad_queries_total{{reason=\"{reason}\"}}");
        assert!(metric(&d.agent, &line) > 0.0, "{reason}");
    }
    assert!(metric(&d.agent, "sidecar_dns_truncated_total") >= 2.0);
    assert!(
        metric(
            &d.agent,
            "sidecar_dns_responses_total{transport=\"udp\",rcode=\"nxdomain\"}"
        ) >= 1.0
    );
    assert!(d.agent.log().contains("DNS interface listening"));
}

#[test]
fn tcp_connections_are_capped_and_idle_ones_closed() {
    let d = Dns::start(
        0,
        &[
            ("SIDECAR_DNS_TCP_MAX_CONNECTIONS", "2"),
            ("SIDECAR_DNS_TCP_IDLE_TIMEOUT", "500ms"),
        ],
    );
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(d.addr()).expect("connect"))
        .collect();
    // Give the daemon a moment to accept both before the third.
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(d.addr()).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0, "closed at once");
    // The idle ones are closed by the timeout.
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
        let started = Instant::now();
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // A new connection is served, several queries on it in a row.
    let mut s = TcpStream::connect(d.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    for id in 1..=3u16 {
        let q = dns::query(id, "web.service.sidecar.local", dns::A, None);
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(&q);
        s.write_all(&msg).expect("write");
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("len");
        let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut resp).expect("resp");
        let h = head(&resp).expect("head");
        assert_eq!((h.id, h.answers), (id, 2));
    }
    assert!(metric(&d.agent, "sidecar_dns_tcp_refused_total") >= 1.0);
    assert!(metric(&d.agent, "sidecar_dns_tcp_idle_closed_total") >= 2.0);
}

#[test]
fn answers_follow_a_drain_at_once() {
    let d = Dns::start(0, &[]);
    let r = request("POST", &d.agent.url("/api/services/abc123/drain"));
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for(
        "the drained instance gone from DNS",
        Duration::from_secs(5),
        || (d.short(&["web.service.sidecar.local", "A"]) == set(&["127.0.0.11"])).then_some(()),
    );
    assert_eq!(
        d.short(&["_8080._web._tcp.sidecar.local", "SRV"]),
        set(&["0 10 32770 8080.tcp.web.def456.a.sidecar.local."])
    );
    // Its own name is gone too: only ALIVE instances are in DNS.
    assert!(
        d.dig(&["8080.tcp.web.abc123.a.sidecar.local", "A"])
            .contains("status: NXDOMAIN")
    );
}

#[test]
fn names_outside_the_domain_go_to_the_recursors() {
    // A recursor of our own on loopback: answers every A query with 127.0.0.99.
    let recursor = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let raddr = recursor.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = recursor.recv_from(&mut buf) {
            let q = &buf[..n];
            if q.len() < 12 {
                continue;
            }
            // The question ends at the first zero label byte after the header, + 4.
            let Some(end) = q[12..].iter().position(|&b| b == 0).map(|p| 12 + p + 5) else {
                continue;
            };
            let mut r = q[..end.min(n)].to_vec();
            r[2] |= 0x80;
            r[3] = 0x80;
            r[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 99]);
            let _ = recursor.send_to(&r, peer);
        }
    });
    let closed = free_port("127.0.0.1");
    let recursors = format!("127.0.0.1:{closed},{raddr}");
    let d = Dns::start(0, &[("SIDECAR_DNS_RECURSORS", &recursors)]);
    // The first recursor is a closed port: the second answers.
    let out = d.dig(&["+rec", "outside.example", "A"]);
    assert!(out.contains("127.0.0.99"), "{out}");
    assert!(out.contains(" ra"), "recursion available: {out}");
    // Names in the domain are still ours.
    assert_eq!(d.short(&["web.service.sidecar.local", "A"]).len(), 2);
    assert!(metric(&d.agent, "sidecar_dns_forwarded_total{result=\"answered\"}") >= 1.0);
}

/// sidecar-dns (Go) on the same catalog: the names it knows give the same records, and
/// after a drain ours change while its stay those of its start-up snapshot.
#[test]
fn sidecar_dns_gives_the_same_answers_and_ours_follow_a_drain() {
    let Some(bin) = dns::sidecar_dns_bin() else {
        eprintln!(
            "SKIPPED: ../shared/tools/go-sidecar (the Go sidecar-dns) is absent: the comparison needs it"
        );
        return;
    };
    assert!(
        dns::sidecar_dns_port_free(Duration::from_secs(120)),
        "port {} stays taken: sidecar-dns needs it",
        dns::SIDECAR_DNS_HTTP_PORT
    );
    let d = Dns::start(0, &[("SIDECAR_DNS_TTL", "5")]);
    let theirs_port = free_port("127.0.0.1");
    let log = std::fs::File::create(d.agent.dir.path().join("sidecar-dns.log")).expect("log");
    let _theirs = KillOnDrop::spawn(
        Command::new(&bin)
            .env_clear()
            .env("SDNS_DNS_PORT", theirs_port.to_string())
            .env("SDNS_SIDECAR_STATE_URL", d.agent.url("/api/state.json"))
            .env("SDNS_BASE_DOMAIN", DOMAIN)
            .env("SDNS_TTL", "5")
            // Never forwards anywhere but loopback (we ask it nothing outside the domain).
            .env("SDNS_FORWARD_SERVERS", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(log),
    );
    let names = [
        ("_8080._web._tcp.sidecar.local", "SRV"),
        ("8080.tcp.web.abc123.a.sidecar.local", "A"),
        ("8080.tcp.web.def456.a.sidecar.local", "A"),
        ("_53._dns_svc._udp.sidecar.local", "SRV"),
        ("53.udp.dns_svc.udp1.a.sidecar.local", "A"),
        ("_8080._web._tcp.sidecar.local", "TXT"),
    ];
    // TTL, class, type and data of every answer (sidecar-dns names its SRV records
    // `_web._tcp...` instead of the question's name; the records are the same).
    let answers = |port: u16, name: &str, t: &str| -> BTreeSet<String> {
        dig(port, &["+noall", "+answer", name, t])
            .lines()
            // dig prints its errors (`;; communications error ...`) as comments.
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3).then(|| f[1..].join(" "))
            })
            .collect()
    };
    wait_for("sidecar-dns answering", Duration::from_secs(20), || {
        (!answers(theirs_port, names[0].0, names[0].1).is_empty()).then_some(())
    });
    for (name, t) in names {
        let ours = answers(d.port, name, t);
        assert!(!ours.is_empty(), "{name} {t}");
        assert_eq!(ours, answers(theirs_port, name, t), "{name} {t}");
        // Over TCP too (the order differs: ours is rotated).
        assert_eq!(
            lines(&dig(d.port, &["+tcp", "+short", name, t])),
            lines(&dig(theirs_port, &["+tcp", "+short", name, t])),
            "{name} {t} over TCP"
        );
    }
    // A drain: ours follows, sidecar-dns keeps answering with the drained instance.
    let before = answers(theirs_port, names[0].0, "SRV");
    let r = request("POST", &d.agent.url("/api/services/abc123/drain"));
    assert_eq!(r.status, 202);
    wait_for(
        "our SRV without the drained instance",
        Duration::from_secs(5),
        || (answers(d.port, names[0].0, "SRV").len() == 1).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        answers(theirs_port, names[0].0, "SRV"),
        before,
        "sidecar-dns answers from its start-up snapshot"
    );
}

/// Set inside the namespace the system-resolver test re-runs itself in.
const INSIDE_RESOLVER_NS: &str = "SIDECAR_DNS_TEST_INSIDE_NS";

/// The system resolver (glibc's getaddrinfo, what `std::net` and most programs use)
/// finds a service through the agent. Runs in its own network and mount namespaces,
/// where the agent answers on 127.0.0.1:53 and `/etc/resolv.conf` points at it.
#[test]
fn the_system_resolver_finds_services() {
    if std::env::var_os(INSIDE_RESOLVER_NS).is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(
            &resolv,
            "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
        )
        .expect("resolv.conf");
        let exe = std::env::current_exe().expect("the test binary");
        let status = Command::new("unshare")
            .args(["--net", "--mount", "--", "sh", "-c"])
            .arg(
                r#"ip link set lo up && mount --bind "$RESOLV" /etc/resolv.conf && exec "$0" "$@""#,
            )
            .arg(exe)
            .args([
                "--exact",
                "the_system_resolver_finds_services",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(INSIDE_RESOLVER_NS, "1")
            .env("RESOLV", &resolv)
            .status()
            .expect("unshare (util-linux) runs the test in its own namespaces");
        assert!(status.success(), "the test inside the namespaces failed");
        return;
    }
    let agent = Agent::start(
        "node-a",
        &catalog(0),
        &[
            ("SIDECAR_DNS_ADDR", "127.0.0.1:53"),
            // Not .local: hosts with nss-mdns send .local names to multicast DNS.
            ("SIDECAR_DNS_DOMAIN", "sidecar.internal"),
            ("SIDECAR_HEALTH_INTERVAL", "200ms"),
        ],
    );
    agent.wait_status("web", 0);
    use std::net::ToSocketAddrs;
    let ips = wait_for("web through getaddrinfo", Duration::from_secs(15), || {
        let ips: BTreeSet<String> = ("web.service.sidecar.internal", 80)
            .to_socket_addrs()
            .ok()?
            .map(|a| a.ip().to_string())
            .collect();
        (ips.len() == 2).then_some(ips)
    });
    assert_eq!(ips, set(&["127.0.0.10", "127.0.0.11"]));
    let out = Command::new("getent")
        .args(["hosts", "8080.tcp.web.abc123.a.sidecar.internal"])
        .output()
        .expect("getent");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("127.0.0.10"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // An unknown name fails as unknown names do.
    assert!(
        ("nope.service.sidecar.internal", 80)
            .to_socket_addrs()
            .is_err()
    );
}
