//! Rendering of check arguments, the subset of Go's text/template Sidecar's checks use:
//! `{{ host }}` (the advertise IP), `{{ container }}` (the service's `Hostname`),
//! `{{ tcp N }}` / `{{ udp N }}` (the `Port` mapped to ServicePort N, -1 if none) and
//! service fields (`{{ .Name }}`, `{{ .ID }}`, ...). Anything that would not parse or
//! execute in Go leaves the arguments as they were, as in Sidecar.

use sidecar_catalog::{PortKind, Service};

/// Renders `args`; on any error returns them unchanged.
pub fn render(args: &str, svc: &Service, host_ip: &str) -> String {
    try_render(args, svc, host_ip).unwrap_or_else(|| args.to_string())
}

fn try_render(args: &str, svc: &Service, host_ip: &str) -> Option<String> {
    let mut out = String::with_capacity(args.len());
    let mut rest = args;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let mut action = &after[..end];
        // Go's trim markers: `{{- x -}}` removes surrounding whitespace.
        if let Some(a) = action.strip_prefix("- ") {
            action = a;
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
        }
        let mut rest_after = &after[end + 2..];
        if let Some(a) = action.strip_suffix(" -") {
            action = a;
            rest_after = rest_after.trim_start();
        }
        out.push_str(&eval(action.trim(), svc, host_ip)?);
        rest = rest_after;
    }
    out.push_str(rest);
    Some(out)
}

fn eval(action: &str, svc: &Service, host_ip: &str) -> Option<String> {
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        ["host"] => Some(host_ip.to_string()),
        ["container"] => Some(svc.hostname.clone()),
        [kind @ ("tcp" | "udp"), n] => {
            let sp: i64 = n.parse().ok()?;
            let kind = if *kind == "tcp" {
                PortKind::Tcp
            } else {
                PortKind::Udp
            };
            let port = u16::try_from(sp)
                .ok()
                .and_then(|sp| svc.port_for_service_port(sp, kind))
                .map(i64::from)
                .unwrap_or(-1);
            Some(port.to_string())
        }
        [field] if field.starts_with('.') => match &field[1..] {
            "ID" => Some(svc.id.clone()),
            "Name" => Some(svc.name.clone()),
            "Image" => Some(svc.image.clone()),
            "Hostname" => Some(svc.hostname.clone()),
            "ProxyMode" => Some(svc.proxy_mode.clone()),
            "Status" => Some(svc.status.code().to_string()),
            "Created" => Some(svc.created.to_go_string()),
            "Updated" => Some(svc.updated.to_go_string()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::Port;

    fn svc() -> Service {
        Service {
            id: "deadbeef0001".into(),
            name: "awesome".into(),
            hostname: "box1".into(),
            ports: vec![
                Port {
                    kind: PortKind::Udp,
                    port: 11234,
                    service_port: 8080,
                    ip: String::new(),
                },
                Port {
                    kind: PortKind::Tcp,
                    port: 1234,
                    service_port: 8081,
                    ip: String::new(),
                },
            ],
            ..Service::default()
        }
    }

    #[test]
    fn sidecar_example() {
        assert_eq!(
            render(
                "http://{{ host }}:{{ tcp 8081 }}/status/check",
                &svc(),
                "10.0.0.1"
            ),
            "http://10.0.0.1:1234/status/check"
        );
        assert_eq!(
            render("{{udp 8080}} {{ tcp 8080 }}", &svc(), "x"),
            "11234 -1"
        );
        assert_eq!(
            render("{{ container }}/{{ .Name }}/{{.ID}}", &svc(), "x"),
            "box1/awesome/deadbeef0001"
        );
    }

    #[test]
    fn errors_leave_args_raw() {
        for raw in [
            "{{ host",
            "{{ nope }}",
            "{{ tcp x }}",
            "{{ .Nope }}",
            "a {{ }} b",
        ] {
            assert_eq!(render(raw, &svc(), "ip"), raw);
        }
        assert_eq!(render("no template", &svc(), "ip"), "no template");
        assert_eq!(render("a {{- host -}} b", &svc(), "ip"), "aipb");
    }
}
