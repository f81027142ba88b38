//! Test-only discovery source. Setting `services` is a `;`-separated list of
//! `id,name,port,service-port` entries; every call reports exactly those (UDP when the
//! name ends in `/udp`), each with an `HttpGet` check on its port and a listen port.
//! Setting `fail` makes `discover` return that error instead.

use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::discovery_source::{self, CheckSpec, Discovered, DiscoverySource};
use sidecar_plugin_sdk::types::{Port, PortKind, Service, ServiceStatus, Timestamp};
use std::cell::RefCell;

thread_local! {
    static SERVICES: RefCell<String> = const { RefCell::new(String::new()) };
    static FAIL: RefCell<Option<String>> = const { RefCell::new(None) };
}

struct Echo;

impl DiscoverySource for Echo {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&settings, &["services", "fail"])?;
        if let Some(services) = s.get("services") {
            SERVICES.with(|s| *s.borrow_mut() = services.to_string());
        }
        if let Some(why) = s.get("fail") {
            FAIL.with(|f| *f.borrow_mut() = Some(why.to_string()));
        }
        Ok(())
    }

    fn discover() -> Result<Vec<Discovered>, String> {
        if let Some(why) = FAIL.with(|f| f.borrow().clone()) {
            return Err(why);
        }
        SERVICES.with(|s| {
            s.borrow()
                .split(';')
                .filter(|e| !e.is_empty())
                .map(parse)
                .collect()
        })
    }
}

fn parse(entry: &str) -> Result<Discovered, String> {
    let parts: Vec<&str> = entry.split(',').collect();
    let [id, name, port, service_port] = parts[..] else {
        return Err(format!("bad entry {entry:?}"));
    };
    let number = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port {s:?}"));
    let (name, kind) = match name.strip_suffix("/udp") {
        Some(n) => (n, PortKind::Udp),
        None => (name, PortKind::Tcp),
    };
    let port = number(port)?;
    let zero = Timestamp {
        seconds: 0,
        nanoseconds: 0,
    };
    Ok(Discovered {
        service: Service {
            id: id.to_string(),
            name: name.to_string(),
            image: format!("{name}:latest"),
            created: Timestamp {
                seconds: 1_700_000_000,
                nanoseconds: 5,
            },
            hostname: String::new(),
            ports: vec![Port {
                kind,
                port,
                service_port: number(service_port)?,
                ip: "127.0.0.1".into(),
            }],
            updated: zero,
            proxy_mode: "http".into(),
            status: ServiceStatus::Alive,
        },
        check: Some(CheckSpec {
            check_type: "HttpGet".into(),
            args: format!("http://:{port}/health"),
        }),
        listen_port: Some(port),
    })
}

discovery_source::export!(Echo);
