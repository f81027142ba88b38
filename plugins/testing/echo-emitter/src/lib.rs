//! Test-only proxy emitter. With setting `mode = "xds"` it returns one resource per
//! service (type `test.v1.Service`, name = service name, value = the ID's bytes);
//! otherwise a config file with one line per service:
//! `<cluster-name> <hostname> <name> <id> <status> <port>...`.

use sidecar_plugin_sdk::proxy_emitter::{self, EmitRequest, Emitted, ProxyEmitter, XdsResource};
use sidecar_plugin_sdk::{Settings, settings};
use std::cell::Cell;

thread_local! {
    static XDS: Cell<bool> = const { Cell::new(false) };
}

struct Echo;

impl ProxyEmitter for Echo {
    fn configure(pairs: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&pairs, &["mode"])?;
        let xds = s.map("mode", |v| match v {
            "xds" => Ok(true),
            "file" => Ok(false),
            _ => Err(settings::invalid("mode", v, "`xds` or `file`")),
        })?;
        if let Some(xds) = xds {
            XDS.with(|x| x.set(xds));
        }
        Ok(())
    }

    fn emit(req: EmitRequest) -> Result<Emitted, String> {
        if XDS.with(Cell::get) {
            let resources = req
                .services
                .iter()
                .map(|s| XdsResource {
                    type_url: "test.v1.Service".into(),
                    name: s.name.clone(),
                    value: s.id.clone().into_bytes(),
                })
                .collect();
            return Ok(Emitted::Xds(resources));
        }
        let mut out = String::new();
        for s in &req.services {
            let ports: Vec<String> = s
                .ports
                .iter()
                .map(|p| format!("{}->{}", p.port, p.service_port))
                .collect();
            out.push_str(&format!(
                "{} {} {} {} {:?} {}\n",
                req.cluster_name,
                req.hostname,
                s.name,
                s.id,
                s.status,
                ports.join(" ")
            ));
        }
        Ok(Emitted::ConfigFile(out))
    }
}

proxy_emitter::export!(Echo);
