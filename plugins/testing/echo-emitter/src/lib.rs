//! Test-only proxy emitter. With setting `mode = "xds"` it returns one resource per
//! service (type `test.v1.Service`, name = service name, value = the ID's bytes);
//! otherwise a config file with one line per service:
//! `<cluster-name> <hostname> <name> <id> <status> <port>...`.

wit_bindgen::generate!({ world: "proxy-emitter", path: "../../../wit" });

use exports::sidecar::plugin::emitter::{EmitRequest, Emitted, XdsResource};
use exports::sidecar::plugin::{emitter, lifecycle};
use std::cell::Cell;

thread_local! {
    static XDS: Cell<bool> = const { Cell::new(false) };
}

struct Echo;

impl lifecycle::Guest for Echo {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in settings {
            match (key.as_str(), value.as_str()) {
                ("mode", "xds") => XDS.with(|x| x.set(true)),
                ("mode", "file") => XDS.with(|x| x.set(false)),
                (k, v) => return Err(format!("bad setting {k} = {v:?}")),
            }
        }
        Ok(())
    }
}

impl emitter::Guest for Echo {
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

export!(Echo);
