//! Settings and rendering: the template (Sidecar's layout by default, or the user's
//! `HAPROXY_TEMPLATE_FILE`) filled with the grouped catalog.

use crate::model::{self, Grouped, Instance, is_safe_token};
use crate::sidecar::{self, Bind, SidecarProxy};
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::Serialize;

/// The default template: Sidecar's `views/haproxy.cfg` semantics for HAProxy 2.6 in
/// master-worker mode.
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/haproxy.cfg.j2");

/// Fuel for one render: a bound on template work, so a user template that loops over
/// itself cannot hang the daemon's proxy driver.
const FUEL: u64 = 50_000_000;

/// What the host (and plugins.toml) can set. Keys are kebab-case strings on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// `bind-ip`: the address frontends bind to (`HAPROXY_BIND_IP`).
    pub bind_ip: String,
    /// `user` / `group`: the `global` section's lines; empty leaves them out.
    pub user: String,
    pub group: String,
    /// `use-hostnames`: servers by hostname instead of IP.
    pub use_hostnames: bool,
    /// `stats-socket`: the admin socket (runtime API and seamless reloads).
    pub stats_socket: String,
    /// `stats-port`: Sidecar's stats frontend (3212); 0 leaves it out.
    pub stats_port: u16,
    /// `stats-internal-port`: the stats page behind it (32012, loopback only).
    pub stats_internal_port: u16,
    /// `stats-bind-ip`: where the stats frontend listens (127.0.0.1: the stats page is
    /// loopback-only unless this opens it; Sidecar listened on 0.0.0.0).
    pub stats_bind_ip: String,
    /// `hard-stop-after`: how long old workers may keep long connections after a reload.
    pub hard_stop_after: String,
    /// `template`: the template text; empty means the default.
    #[serde(skip)]
    pub template: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_ip: "192.168.168.168".into(),
            user: "haproxy".into(),
            group: String::new(),
            use_hostnames: false,
            stats_socket: "/var/run/haproxy_stats.sock".into(),
            stats_port: 3212,
            stats_internal_port: 32012,
            stats_bind_ip: "127.0.0.1".into(),
            hard_stop_after: "60s".into(),
            template: String::new(),
        }
    }
}

/// The settings keys, in the order of the fields above.
pub const KNOWN_KEYS: &[&str] = &[
    "bind-ip",
    "user",
    "group",
    "use-hostnames",
    "stats-socket",
    "stats-port",
    "stats-internal-port",
    "stats-bind-ip",
    "hard-stop-after",
    "template",
];

impl Settings {
    /// Parses the settings list; unknown keys and unsafe values are errors (the plugin is
    /// disabled with the message, and the host keeps the last good config).
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, String> {
        let given = sidecar_plugin_sdk::Settings::new(pairs, KNOWN_KEYS)?;
        let d = Settings::default();
        let text = |key: &str, empty_ok: bool, default: String| {
            Ok::<_, String>(
                given
                    .map(key, |v| token(key, v.trim(), empty_ok))?
                    .unwrap_or(default),
            )
        };
        let s = Settings {
            bind_ip: text("bind-ip", true, d.bind_ip)?,
            user: text("user", true, d.user)?,
            group: text("group", true, d.group)?,
            use_hostnames: given.flag("use-hostnames")?.unwrap_or(d.use_hostnames),
            stats_socket: given
                .map("stats-socket", |v| path("stats-socket", v.trim()))?
                .unwrap_or(d.stats_socket),
            stats_port: given
                .parse("stats-port", "a port number")?
                .unwrap_or(d.stats_port),
            stats_internal_port: given
                .parse("stats-internal-port", "a port number")?
                .unwrap_or(d.stats_internal_port),
            stats_bind_ip: text("stats-bind-ip", false, d.stats_bind_ip)?,
            hard_stop_after: text("hard-stop-after", false, d.hard_stop_after)?,
            template: given.get("template").map_or(d.template, str::to_string),
        };
        if s.stats_port != 0 && s.stats_internal_port == 0 {
            return Err("`stats-internal-port` must not be 0 while `stats-port` is set".into());
        }
        // Compile now, so a broken template is reported by `configure`, with its line.
        environment(&s.template)?;
        Ok(s)
    }
}

fn token(key: &str, v: &str, empty_ok: bool) -> Result<String, String> {
    if (v.is_empty() && empty_ok) || is_safe_token(v) || (key == "bind-ip" && v == "*") {
        Ok(v.to_string())
    } else {
        Err(format!("`{key}` = {v:?} is not a valid HAProxy value"))
    }
}

fn path(key: &str, v: &str) -> Result<String, String> {
    if !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '#')
    {
        Ok(v.to_string())
    } else {
        Err(format!("`{key}` = {v:?} is not a usable path"))
    }
}

/// The template environment: Jinja syntax with block trimming, strict undefined
/// variables (a typo fails the render instead of writing an empty value) and fuel.
fn environment(template: &str) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| e.to_string())?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.add_filter("sanitize_name", |s: &str| model::sanitize_name(s));
    env.add_filter("haproxy_mode", |s: &str| model::haproxy_mode(s).0);
    let source = if template.trim().is_empty() {
        DEFAULT_TEMPLATE.to_string()
    } else {
        template.to_string()
    };
    env.add_template_owned("haproxy.cfg", source)
        .map_err(|e| format!("template: {e:#}"))?;
    Ok(env)
}

/// Renders the config without sidecar proxies. Returns the text and the warnings.
pub fn render(
    settings: &Settings,
    instances: &[Instance],
    hostname: &str,
    cluster_name: &str,
) -> Result<(String, Vec<String>), String> {
    render_with_proxies(settings, instances, &[], hostname, cluster_name)
}

/// Renders the config with this host's sidecar proxies (`sidecar_proxies` in the
/// template). Returns the text and the grouping and proxy warnings.
pub fn render_with_proxies(
    settings: &Settings,
    instances: &[Instance],
    proxies: &[SidecarProxy],
    hostname: &str,
    cluster_name: &str,
) -> Result<(String, Vec<String>), String> {
    let Grouped {
        services,
        mut warnings,
    } = model::group(instances, settings.use_hostnames);
    let resolved = sidecar::resolve(proxies, &services, default_binds(settings, &services));
    warnings.extend(resolved.warnings);
    let env = environment(&settings.template)?;
    let tmpl = env
        .get_template("haproxy.cfg")
        .map_err(|e| format!("template: {e:#}"))?;
    let ctx = context! {
        hostname => hostname,
        cluster_name => cluster_name,
        services => Value::from(Serde(&services)),
        all_services => Value::from(Serde(instances)),
        sidecar_proxies => Value::from(Serde(&resolved.proxies)),
        ..Value::from(Serde(settings))
    };
    let text = tmpl.render(ctx).map_err(|e| format!("template: {e:#}"))?;
    Ok((text, warnings))
}

/// What the default template binds besides sidecar listeners: the ServicePort
/// frontends and the stats frontends. (A user template may bind others; it then owns
/// their conflicts.)
fn default_binds(settings: &Settings, services: &[model::ServiceGroup]) -> Vec<Bind> {
    let bind = |host: &str, port: u16, holder: &str| Bind {
        host: host.to_string(),
        port,
        holder: format!("frontend {holder}"),
    };
    let mut binds: Vec<Bind> = services
        .iter()
        .flat_map(|s| &s.ports)
        .map(|l| bind(&settings.bind_ip, l.service_port, &l.name))
        .collect();
    if settings.stats_port != 0 {
        binds.push(bind(
            &settings.stats_bind_ip,
            settings.stats_port,
            "stats_proxy",
        ));
        binds.push(bind("127.0.0.1", settings.stats_internal_port, "stats"));
    }
    binds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortSpec;

    fn web(id: &str, host: &str, port: u16, mode: &str) -> Instance {
        Instance {
            id: id.into(),
            name: "web".into(),
            image: "web:1".into(),
            hostname: host.into(),
            ports: vec![PortSpec {
                kind: "tcp".into(),
                port,
                service_port: 10000,
                ip: "127.0.0.1".into(),
            }],
            proxy_mode: mode.into(),
            status: "alive".into(),
            updated: String::new(),
        }
    }

    #[test]
    fn default_template_has_sidecar_sections() {
        let s = Settings::parse(&[("bind-ip".into(), "127.0.0.2".into())]).expect("valid");
        let (text, warnings) =
            render(&s, &[web("abc", "h1", 9001, "http")], "h1", "default").expect("renders");
        assert!(warnings.is_empty());
        for line in [
            "frontend web-10000\n    mode http\n    bind 127.0.0.2:10000\n    default_backend web-10000\n",
            "backend web-10000\n    mode http\n    server h1-abc 127.0.0.1:9001 cookie h1-9001\n",
            "    user haproxy\n",
            "stats socket /var/run/haproxy_stats.sock mode 660 level admin expose-fd listeners",
            "bind 127.0.0.1:3212",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("group"), "empty group leaves the line out");
        assert!(
            !text.contains("mode 666") && !text.contains("0.0.0.0"),
            "{text}"
        );
        assert!(!text.contains("init-addr"), "literal IPs resolve nothing");

        let s = Settings::parse(&[("use-hostnames".into(), "true".into())]).expect("valid");
        let (text, _) = render(&s, &[web("abc", "h1", 9001, "http")], "h1", "c").expect("renders");
        assert!(
            text.contains("server h1-abc h1:9001 cookie h1-9001 init-addr last,libc,none\n"),
            "{text}"
        );
    }

    #[test]
    fn unknown_proxy_mode_still_gives_a_valid_mode() {
        let s = Settings::default();
        let (text, warnings) = render(&s, &[web("a", "h", 1, "")], "h", "c").expect("renders");
        assert!(text.contains("mode http"));
        assert!(warnings.is_empty());
        let (text, warnings) = render(&s, &[web("a", "h", 1, "bogus")], "h", "c").expect("renders");
        assert!(text.contains("frontend web-10000\n    mode tcp"));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn user_template_and_errors() {
        let s = Settings::parse(&[(
            "template".into(),
            "{% for s in services %}{{ s.name | upper }}={{ s.ports[0].servers | length }}\n{% endfor %}"
                .into(),
        )])
        .expect("valid");
        let (text, _) = render(&s, &[web("a", "h", 1, "tcp")], "h", "c").expect("renders");
        assert_eq!(text, "WEB=1\n");

        let err = Settings::parse(&[("template".into(), "{% for %}".into())]).expect_err("bad");
        assert!(err.contains("template"), "{err}");
        let s = Settings::parse(&[("template".into(), "{{ no_such_thing }}".into())])
            .expect("compiles");
        assert!(render(&s, &[], "h", "c").is_err(), "undefined is an error");
        let looping = "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}";
        let s = Settings::parse(&[("template".into(), looping.into())]).expect("compiles");
        assert!(render(&s, &[], "h", "c").is_err(), "recursion is bounded");
    }

    fn proxy(upstreams: &[(&str, u16, &str, u16)]) -> SidecarProxy {
        SidecarProxy {
            id: "web-1-sidecar-proxy".into(),
            name: "web-sidecar-proxy".into(),
            address: "127.0.0.2".into(),
            port: 21000,
            destination_service_name: "web".into(),
            destination_service_id: "web-1".into(),
            local_service_address: "127.0.0.1".into(),
            local_service_port: 8080,
            upstreams: upstreams
                .iter()
                .map(|(name, dport, addr, port)| crate::sidecar::Upstream {
                    destination_name: name.to_string(),
                    destination_port: *dport,
                    local_bind_address: addr.to_string(),
                    local_bind_port: *port,
                })
                .collect(),
        }
    }

    #[test]
    fn default_template_renders_sidecar_listeners() {
        let s = Settings::parse(&[("bind-ip".into(), "127.0.0.2".into())]).expect("valid");
        let (text, warnings) = render_with_proxies(
            &s,
            &[web("abc", "h1", 9001, "http")],
            &[proxy(&[
                ("web", 0, "127.0.0.1", 9191),
                ("cache", 6379, "127.0.0.1", 9192),
            ])],
            "h1",
            "c",
        )
        .expect("renders");
        assert!(warnings.is_empty(), "{warnings:?}");
        for block in [
            "\nfrontend web-1-sidecar-proxy_public_21000\n    mode tcp\n    bind 127.0.0.2:21000\n    default_backend web-1-sidecar-proxy_public_21000\n\nbackend web-1-sidecar-proxy_public_21000\n    mode tcp\n    server local 127.0.0.1:8080\n",
            "\nfrontend web-1-sidecar-proxy_upstream_9191\n    mode tcp\n    bind 127.0.0.1:9191\n    default_backend web-1-sidecar-proxy_upstream_9191\n\nbackend web-1-sidecar-proxy_upstream_9191\n    mode tcp\n    server h1-abc 127.0.0.1:9001\n",
            "\nbackend web-1-sidecar-proxy_upstream_9192\n    mode tcp\n",
        ] {
            assert!(text.contains(block), "missing {block:?} in\n{text}");
        }
        assert!(
            text.ends_with("backend web-1-sidecar-proxy_upstream_9192\n    mode tcp\n"),
            "no server for a missing destination:\n{text}"
        );
    }

    #[test]
    fn sidecar_listeners_never_take_a_bound_port() {
        let s = Settings::parse(&[("bind-ip".into(), "127.0.0.2".into())]).expect("valid");
        let mut p = proxy(&[
            ("web", 0, "127.0.0.2", 10000),
            ("web", 0, "127.0.0.1", 32012),
            ("web", 0, "127.0.0.1", 3212),
            ("web", 0, "127.0.0.1", 9191),
            ("web", 0, "127.0.0.1", 9191),
        ]);
        p.port = 10000;
        let (text, warnings) =
            render_with_proxies(&s, &[web("abc", "h1", 9001, "http")], &[p], "h1", "c")
                .expect("renders");
        assert_eq!(warnings.len(), 5, "{warnings:#?}");
        assert!(
            warnings[0].contains("frontend web-10000"),
            "{}",
            warnings[0]
        );
        assert!(warnings[2].contains("frontend stats"), "{}", warnings[2]);
        assert!(
            warnings[3].contains("frontend stats_proxy"),
            "{}",
            warnings[3]
        );
        assert_eq!(text.matches("\n    bind ").count(), 4, "{text}");
    }

    #[test]
    fn user_templates_see_sidecar_proxies() {
        let s = Settings::parse(&[(
            "template".into(),
            "{% for p in sidecar_proxies %}{{ p.id }} {{ p.public.name }} \
             {% for u in p.upstreams %}{{ u.destination_name }}:{{ u.destination_port }}={{ u.servers | length }}{% endfor %};\n{% endfor %}"
                .into(),
        )])
        .expect("valid");
        let (text, _) = render_with_proxies(
            &s,
            &[web("a", "h", 1, "tcp")],
            &[proxy(&[("web", 0, "127.0.0.1", 9191)])],
            "h",
            "c",
        )
        .expect("renders");
        assert_eq!(
            text,
            "web-1-sidecar-proxy web-1-sidecar-proxy_public_21000 web:10000=1;\n"
        );
    }

    /// The default template with sidecar listeners (and a destination with no
    /// instance, an IPv6 bind) passes the real `haproxy -c`.
    #[test]
    fn haproxy_accepts_sidecar_listeners() {
        if std::process::Command::new("haproxy")
            .arg("-v")
            .output()
            .is_err()
        {
            println!("note: haproxy is not on PATH; skipping the `haproxy -c` check");
            return;
        }
        let s = Settings::parse(&[
            ("bind-ip".into(), "127.0.0.2".into()),
            ("user".into(), "".into()),
        ])
        .expect("valid");
        let (text, warnings) = render_with_proxies(
            &s,
            &[web("abc", "h1", 9001, "http")],
            &[proxy(&[
                ("web", 0, "127.0.0.1", 9191),
                ("web", 10000, "::1", 9191),
                ("cache", 0, "127.0.0.1", 9192),
                ("web", 0, "127.0.0.1", 9191),
            ])],
            "h1",
            "c",
        )
        .expect("renders");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let path =
            std::env::temp_dir().join(format!("proxy-haproxy-sidecar-{}.cfg", std::process::id()));
        std::fs::write(&path, &text).expect("write");
        let out = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy runs");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "haproxy -c refused:\n{}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn settings_are_checked() {
        assert!(Settings::parse(&[("bind-ip".into(), "1.2.3.4\nfoo".into())]).is_err());
        assert!(Settings::parse(&[("colour".into(), "red".into())]).is_err());
        assert!(Settings::parse(&[("user".into(), "".into())]).is_ok());
    }
}
