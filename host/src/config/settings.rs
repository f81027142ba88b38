//! Every setting the daemon and its command line read, in one table: the environment
//! variable, its flag, its default and what it does. `--help` (each flag's text, and the
//! list of environment-only settings) and `docs/configuration.md` are both generated from
//! [`SETTINGS`], and tests check the table against the code that reads the variables, so
//! a new setting is one entry here.

use std::fmt::Write as _;

/// Where a setting belongs; the order of the variants is the order of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Cluster,
    Discovery,
    Health,
    Catalog,
    Api,
    Dns,
    Client,
    Haproxy,
    Envoy,
    Plugins,
    Logging,
    ServiceManager,
}

impl Group {
    pub const ALL: [Group; 12] = [
        Group::Cluster,
        Group::Discovery,
        Group::Health,
        Group::Catalog,
        Group::Api,
        Group::Dns,
        Group::Client,
        Group::Haproxy,
        Group::Envoy,
        Group::Plugins,
        Group::Logging,
        Group::ServiceManager,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::Cluster => "Cluster and gossip",
            Group::Discovery => "Discovery",
            Group::Health => "Health checks",
            Group::Catalog => "Catalog bounds",
            Group::Api => "HTTP API",
            Group::Dns => "DNS interface",
            Group::Client => "Command-line client (members, services, drain, maint)",
            Group::Haproxy => "HAProxy",
            Group::Envoy => "Envoy (xDS)",
            Group::Plugins => "Plugins",
            Group::Logging => "Logging",
            Group::ServiceManager => "Running as a service (systemd, reload, state)",
        }
    }
}

/// A setting's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultIs {
    /// This exact value is used when the setting is not given (tests check that giving
    /// it changes nothing).
    Value(&'static str),
    /// A rule rather than a value (`the host name`).
    Rule(&'static str),
    /// Unset: the feature is off or the value is not needed.
    Unset,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// Sidecar's bare name, also read when `name` is not set.
    pub fallback: Option<&'static str>,
    /// The long flag that overrides the variable, without dashes.
    pub flag: Option<&'static str>,
    pub default: DefaultIs,
    pub group: Group,
    /// One line or a few: what it does, its syntax, its bounds.
    pub help: &'static str,
}

const fn s(name: &'static str, group: Group, default: DefaultIs, help: &'static str) -> Setting {
    Setting {
        name,
        fallback: None,
        flag: None,
        default,
        group,
        help,
    }
}

impl Setting {
    const fn flag(mut self, flag: &'static str) -> Setting {
        self.flag = Some(flag);
        self
    }

    const fn bare(mut self, fallback: &'static str) -> Setting {
        self.fallback = Some(fallback);
        self
    }

    /// The default as the reference and `--help` print it.
    pub fn default_text(&self) -> String {
        match self.default {
            DefaultIs::Value("") => "empty".to_string(),
            DefaultIs::Value(v) => format!("`{v}`"),
            DefaultIs::Rule(r) => r.to_string(),
            DefaultIs::Unset => "unset".to_string(),
        }
    }
}

use DefaultIs::{Rule, Unset, Value};
use Group::*;

/// The table. Keep each group together; the reference lists them in [`Group::ALL`] order.
pub const SETTINGS: &[Setting] = &[
    // --- cluster ---------------------------------------------------------------------
    s("SIDECAR_SEEDS", Cluster, Unset,
      "Members to join: `host` or `host:port` (port: the bind port), comma-separated. The flag is repeatable and replaces the list.")
        .flag("cluster-ip").bare("SEEDS"),
    s("SIDECAR_CLUSTER_NAME", Cluster, Value("default"),
      "Cluster name; bound into the gossip encryption, so clusters with different names ignore each other.")
        .flag("cluster-name").bare("CLUSTER_NAME"),
    s("SIDECAR_ADVERTISE_IP", Cluster, Rule("detected: the first private (RFC 1918) IPv4 address of an interface that is up and not a container or VM bridge (`docker0`, `br-*`, `veth*`, `cni*`, `flannel*`, `virbr*`, `vxlan*`, `cali*`, `weave`, `tun*`, `tap*`, ...), not in `SIDECAR_EXCLUDE_IPS`; the log says which interface was chosen and why"),
      "Address peers, proxies and health checks reach this host on (also put on discovered ports).")
        .flag("advertise-ip").bare("ADVERTISE_IP"),
    s("SIDECAR_EXCLUDE_IPS", Cluster, Value("192.168.168.168"),
      "Addresses never chosen as the advertise IP, comma-separated (the proxies' bind address by default).")
        .bare("EXCLUDE_IPS"),
    s("SIDECAR_NODE_NAME", Cluster, Rule("the host name"),
      "Member name; also the `Hostname` of this host's records.")
        .flag("node-name"),
    s("SIDECAR_BIND_IP", Cluster, Value("0.0.0.0"),
      "Address the gossip UDP and TCP sockets bind to. Without keys and seeds gossip binds 127.0.0.1 only (a cluster of one).")
        .flag("bind-ip"),
    s("SIDECAR_BIND_PORT", Cluster, Value("7946"),
      "Gossip port, UDP and TCP, also advertised.")
        .flag("bind-port").bare("BIND_PORT"),
    s("SIDECAR_ENCRYPTION_KEYS", Cluster, Unset,
      "Gossip keys: base64 AES-256 keys, comma-separated, primary first (`sidecar keygen` makes one). Required for seeds on a non-loopback address unless `SIDECAR_GOSSIP_INSECURE=true`."),
    s("SIDECAR_ENCRYPTION_KEYS_FILE", Cluster, Unset,
      "File of gossip keys, one per line, primary first (`#` comments); replaces `SIDECAR_ENCRYPTION_KEYS`.")
        .flag("encryption-keys-file"),
    s("SIDECAR_GOSSIP_INSECURE", Cluster, Value("false"),
      "Gossip without keys on a non-loopback address: anyone who can reach the gossip port can inject routes into every proxy.")
        .flag("gossip-insecure"),
    s("SIDECAR_GOSSIP_WIRE", Cluster, Value("native"),
      "Gossip protocol: `native` (ours: authenticated, encrypted) or `memberlist` (the Go Sidecar's, unauthenticated, to join or migrate a running Go cluster; also answers the native wire on the same port). See docs/migration.md.")
        .flag("gossip-wire"),
    s("SIDECAR_JOIN_RETRY", Cluster, Value("false"),
      "With seeds given and none joinable at start-up, keep retrying (backoff up to 60s) instead of exiting non-zero as Sidecar does.")
        .flag("join-retry"),
    s("SIDECAR_PUSH_PULL_INTERVAL", Cluster, Value("20s"),
      "Anti-entropy base period (`0` means 79s, as in Sidecar).")
        .bare("PUSH_PULL_INTERVAL"),
    s("SIDECAR_GOSSIP_MESSAGES", Cluster, Value("15"),
      "Datagrams per target per gossip tick (`0` means 3).")
        .bare("GOSSIP_MESSAGES"),
    s("SIDECAR_GOSSIP_INTERVAL", Cluster, Value("200ms"),
      "Gossip tick (positive).")
        .bare("GOSSIP_INTERVAL"),
    s("SIDECAR_HANDOFF_QUEUE_DEPTH", Cluster, Value("1024"),
      "Accepted for compatibility with Sidecar (at least 16).")
        .bare("HANDOFF_QUEUE_DEPTH"),
    s("SIDECAR_GOSSIP_MAX_STREAM", Cluster, Value("33554432"),
      "Largest gossip stream body read, bytes (4 KiB to 64 MiB); also the budget of a records reply."),
    s("SIDECAR_GOSSIP_MAX_CONNECTIONS", Cluster, Value("64"),
      "Concurrent inbound gossip TCP connections."),
    s("SIDECAR_GOSSIP_MAX_MEMBERS", Cluster, Value("16384"),
      "Members in the table (dead and left included); also the most hosts one anti-entropy request may want."),
    s("SIDECAR_GOSSIP_NEW_MEMBERS_PER_SECOND", Cluster, Value("64"),
      "Members new to us that one sending host may introduce per second (and burst)."),
    // --- discovery -------------------------------------------------------------------
    s("SIDECAR_DISCOVERY", Discovery, Value("docker"),
      "Built-in discovery sources, comma-separated: `docker`, `static`, `kubernetes_api` (the `discovery-kubernetes` plugin; any order, unlike Sidecar); empty for none. The flag is repeatable and replaces the list.")
        .flag("discover"),
    s("STATIC_CONFIG_FILE", Discovery, Value("static.json"),
      "The static discovery file (Sidecar's format), re-read when it changes."),
    s("SIDECAR_STATIC_MAX_BYTES", Discovery, Value("33554432"),
      "A larger static file is refused whole; the last good set stays."),
    s("SIDECAR_CONNECT_PORT_RANGE", Discovery, Value("21000-21255"),
      "Ports for static.json sidecar proxies (`Connect.SidecarService` without a `Port`), `FIRST-LAST`; each proxy keeps its port while the range has room."),
    s("DOCKER_URL", Discovery, Rule("unset: `DOCKER_HOST`, else the local socket"),
      "Docker endpoint (`unix:///var/run/docker.sock`, `tcp://host:2375`)."),
    s("SIDECAR_DOCKER_RESYNC", Discovery, Value("5s"),
      "Interval of the full container listing that backs up Docker's event stream."),
    s("K8S_KUBE_API_IP", Discovery, Value("127.0.0.1"),
      "`kubernetes_api`: the Kubernetes API server's address; it is the only host in the plugin's `http` grant unless plugins.toml sets one.")
        .bare("KUBE_API_IP"),
    s("K8S_KUBE_API_PORT", Discovery, Value("8080"),
      "`kubernetes_api`: the API server's port; `443` means HTTPS, any other port plain HTTP (Sidecar's rule; plugins.toml's `api_url` can say otherwise).")
        .bare("KUBE_API_PORT"),
    s("K8S_NAMESPACE", Discovery, Value("default"),
      "`kubernetes_api`: the namespace whose pods are announced (Services are read from every namespace).")
        .bare("NAMESPACE"),
    s("K8S_KUBE_TIMEOUT", Discovery, Value("3s"),
      "`kubernetes_api`: timeout of each API request (1ms to 10m).")
        .bare("KUBE_TIMEOUT"),
    s("K8S_CREDS_PATH", Discovery, Value("/var/run/secrets/kubernetes.io/serviceaccount"),
      "`kubernetes_api`: the service account's directory: `token` (sent as a bearer token, read again for every request, so rotation works) and `ca.crt` (trusted for HTTPS besides the public roots).")
        .bare("CREDS_PATH"),
    s("SERVICES_NAMER", Discovery, Rule("`docker_label` (the `namer-label` plugin)"),
      "Sidecar's namer: `docker_label` or `regex`; plugins.toml's `namer` wins."),
    s("SERVICES_NAME_LABEL", Discovery, Rule("`ServiceName`"),
      "The label the label namer reads."),
    s("SERVICES_NAME_MATCH", Discovery, Unset,
      "The regex namer's pattern (group 1 of a match on the container name)."),
    s("LISTENERS_URLS", Discovery, Unset,
      "Static change listeners: URLs, comma-separated, sent every catalog change."),
    // --- health ----------------------------------------------------------------------
    s("SIDECAR_HEALTH_INTERVAL", Health, Value("3s"),
      "Check period."),
    s("SIDECAR_HEALTH_TIMEOUT", Health, Value("3s"),
      "Check deadline (at most the interval)."),
    s("SIDECAR_HEALTH_CONCURRENCY", Health, Value("64"),
      "Checks running at once."),
    s("SIDECAR_HEALTH_RISE", Health, Value("1"),
      "Consecutive successes that make an instance healthy."),
    s("SIDECAR_HEALTH_FALL", Health, Value("1"),
      "Consecutive failures that make an instance unhealthy."),
    s("SIDECAR_DEFAULT_CHECK_ENDPOINT", Health, Value("/version"),
      "Path of the default `HttpGet` check."),
    s("SIDECAR_CONTAINER_EXEC_CHECKS", Health, Value("false"),
      "Whether a container's labels may ask for a check that runs programs (`External`, or any check plugin with the exec grant)."),
    // --- catalog ---------------------------------------------------------------------
    s("SIDECAR_MAX_CLOCK_AHEAD", Catalog, Value("2h"),
      "How far ahead of our clock a peer's timestamps may be."),
    s("SIDECAR_MAX_RECORDS_PER_ANNOUNCER", Catalog, Value("20000"),
      "Records one member may announce."),
    s("SIDECAR_MAX_ANNOUNCERS", Catalog, Value("16384"),
      "Members whose records are stored."),
    // --- API -------------------------------------------------------------------------
    s("SIDECAR_HTTP_ADDR", Api, Value("0.0.0.0:7777"),
      "Address of the HTTP API (`ip:port`). The client commands ask this address (an unspecified IP becomes loopback).")
        .flag("http-addr"),
    s("SIDECAR_API_TOKEN", Api, Unset,
      "Bearer token (`Authorization: Bearer <token>`) that writes must carry; without one, writes are accepted from loopback only. The client commands send it."),
    s("SIDECAR_API_TOKEN_FILE", Api, Unset,
      "File whose first line is the token (instead of `SIDECAR_API_TOKEN`)."),
    s("SIDECAR_API_AUTH_READS", Api, Value("false"),
      "Reads need the token too (`/health` and the console page stay open). Sidecar's own clients send no token."),
    s("SIDECAR_API_TLS_CERT", Api, Unset,
      "PEM certificate (chain) of the API: the API is served over HTTPS. The client commands then use HTTPS and trust this certificate."),
    s("SIDECAR_API_TLS_KEY", Api, Unset,
      "PEM private key of `SIDECAR_API_TLS_CERT`."),
    s("SIDECAR_HTTP_HEADER_TIMEOUT", Api, Value("10s"),
      "A request's head must arrive within this; else the connection is closed."),
    s("SIDECAR_HTTP_IDLE_TIMEOUT", Api, Value("60s"),
      "A kept-alive connection with no request in progress is closed after this."),
    s("SIDECAR_HTTP_WRITE_TIMEOUT", Api, Value("30s"),
      "A connection that accepted none of a response's bytes for this long is closed."),
    s("SIDECAR_HTTP_MAX_CONNECTIONS", Api, Value("4096"),
      "Open API connections (lowered at start to fit the open-files limit)."),
    s("SIDECAR_HTTP_MAX_WATCHERS", Api, Value("1024"),
      "Concurrent `/api/watch` and `/watch` streams."),
    s("SIDECAR_HTTP_MAX_HEADER_BYTES", Api, Value("65536"),
      "Largest request head (8192 to 16 MiB)."),
    // --- DNS -------------------------------------------------------------------------
    s("SIDECAR_DNS_ADDR", Dns, Rule("`127.0.0.1:8600`, skipped with a warning when another process holds it"),
      "Where the DNS interface answers, UDP and TCP (`ip:port`); empty turns it off. A default address already taken is skipped with a warning; a configured one must bind."),
    s("SIDECAR_DNS_DOMAIN", Dns, Value("sidecar.local"),
      "The domain the DNS interface answers for."),
    s("SIDECAR_DNS_TTL", Dns, Value("0"),
      "TTL of answers, in seconds (at most 3600)."),
    s("SIDECAR_DNS_RECURSORS", Dns, Unset,
      "DNS servers (`ip` or `ip:port`, comma-separated) that names outside the domain are forwarded to, in order; without any, such names are REFUSED."),
    s("SIDECAR_DNS_TCP_MAX_CONNECTIONS", Dns, Value("512"),
      "Open DNS-over-TCP connections."),
    s("SIDECAR_DNS_TCP_IDLE_TIMEOUT", Dns, Value("10s"),
      "A DNS TCP connection with no query for this long is closed."),
    // --- client ----------------------------------------------------------------------
    s("SIDECAR_API_URL", Client, Rule("`http://` (or `https://` with TLS) and `SIDECAR_HTTP_ADDR`"),
      "Base URL of the agent the client commands talk to (`https://10.0.0.5:7777`).")
        .flag("api-url"),
    s("SIDECAR_API_TLS_CA", Client, Rule("`SIDECAR_API_TLS_CERT`"),
      "PEM certificate(s) the client commands trust for an HTTPS API; setting it also selects HTTPS."),
    // --- HAProxy ---------------------------------------------------------------------
    s("HAPROXY_DISABLE", Haproxy, Value("false"),
      "No HAProxy management."),
    s("HAPROXY_CONFIG_FILE", Haproxy, Value("/etc/haproxy.cfg"),
      "The live HAProxy config file."),
    s("HAPROXY_PID_FILE", Haproxy, Value("/var/run/haproxy.pid"),
      "The HAProxy master's pid file."),
    s("HAPROXY_TEMPLATE_FILE", Haproxy, Rule("the built-in template"),
      "A user template; read at start, a missing file fails the start."),
    s("HAPROXY_BIND_IP", Haproxy, Value("192.168.168.168"),
      "Address the frontends bind.")
        .bare("BIND_IP"),
    s("HAPROXY_USER", Haproxy, Value("haproxy"),
      "`user` line of `global`; empty leaves it out."),
    s("HAPROXY_GROUP", Haproxy, Value(""),
      "`group` line of `global`; empty leaves it out."),
    s("HAPROXY_USE_HOSTNAMES", Haproxy, Value("false"),
      "Servers by the instance's host name instead of its IP."),
    s("HAPROXY_VERIFY_COMMAND", Haproxy, Rule("`haproxy -c -f <candidate>`"),
      "Verification command (run with `bash -c`; the config path in it is replaced by the candidate's)."),
    s("HAPROXY_RELOAD_COMMAND", Haproxy, Rule("built-in master-worker start and reload"),
      "Reload command (run with `bash -c`; only its exit status is known)."),
    s("HAPROXY_BINARY", Haproxy, Value("haproxy"),
      "The HAProxy program."),
    s("HAPROXY_STATS_SOCKET", Haproxy, Value("/var/run/haproxy_stats.sock"),
      "Admin socket: runtime API and seamless reloads."),
    s("HAPROXY_MASTER_SOCKET", Haproxy, Value("/var/run/haproxy-master.sock"),
      "Master CLI socket: reloads and their confirmation."),
    s("HAPROXY_STATS_PORT", Haproxy, Value("3212"),
      "Sidecar's stats frontend; `0` leaves it out."),
    s("HAPROXY_STATS_INTERNAL_PORT", Haproxy, Value("32012"),
      "Sidecar's internal stats frontend; `0` leaves it out."),
    s("HAPROXY_MIN_RELOAD_INTERVAL", Haproxy, Value("2s"),
      "Reloads at least this far apart; changes in between coalesce."),
    s("HAPROXY_RUNTIME_API", Haproxy, Value("true"),
      "Endpoint-only changes through the runtime API, without a reload."),
    s("HAPROXY_MAX_VERIFY_RUNS", Haproxy, Value("32"),
      "Renders and checks spent finding the instances to blame when HAProxy refuses a config."),
    s("HAPROXY_EMITTER", Haproxy, Value("proxy-haproxy"),
      "The emitter plugin (a plugins.toml name)."),
    // --- Envoy -----------------------------------------------------------------------
    s("ENVOY_USE_GRPC_API", Envoy, Value("true"),
      "Run the xDS (ADS) server."),
    s("ENVOY_GRPC_PORT", Envoy, Value("7776"),
      "ADS port."),
    s("ENVOY_GRPC_BIND_IP", Envoy, Value("127.0.0.1"),
      "ADS address."),
    s("ENVOY_BIND_IP", Envoy, Value("192.168.168.168"),
      "Listener address in the resources.")
        .bare("BIND_IP"),
    s("ENVOY_USE_HOSTNAMES", Envoy, Value("false"),
      "Endpoints by host name (Envoy resolves them)."),
    s("ENVOY_EMITTER", Envoy, Value("proxy-envoy"),
      "The emitter plugin (a plugins.toml name)."),
    // --- plugins ---------------------------------------------------------------------
    s("SIDECAR_PLUGINS_FILE", Plugins, Rule("none: the embedded defaults"),
      "plugins.toml: which plugins run and with what settings, grants and limits.")
        .flag("plugins"),
    s("SIDECAR_CACHE_DIR", Plugins, Rule("`$XDG_CACHE_HOME/sidecar`, else `$HOME/.cache/sidecar`, else `/var/cache/sidecar` for root"),
      "Where compiled plugins are cached."),
    s("XDG_CACHE_HOME", Plugins, Unset,
      "Base of the compiled-plugin cache when `SIDECAR_CACHE_DIR` is unset."),
    s("HOME", Plugins, Unset,
      "Base of the compiled-plugin cache when neither of the above is set."),
    // --- logging ---------------------------------------------------------------------
    s("SIDECAR_LOGGING_LEVEL", Logging, Value("info"),
      "`debug`, `info`, `warn` or `error` (anything else is `info`).")
        .flag("logging-level").bare("LOGGING_LEVEL"),
    s("SIDECAR_LOGGING_FORMAT", Logging, Value("text"),
      "`json` for one JSON object per line.")
        .bare("LOGGING_FORMAT"),
    s("RUST_LOG", Logging, Unset,
      "A full log filter (`sidecar=debug,info`); wins over the level."),
    s("NO_COLOR", Logging, Unset,
      "Set: no colour codes even at a terminal."),
    // --- service manager -------------------------------------------------------------
    s("SIDECAR_CONFIG_FILE", ServiceManager, Unset,
      "An environment file (`KEY=value` lines, systemd's `EnvironmentFile=` format) whose values override the environment; SIGHUP reads it again (the log level follows it)."),
    s("SIDECAR_STATE_DIR", ServiceManager, Rule("`$XDG_STATE_HOME/sidecar`, else `/var/lib/sidecar` for root, else `~/.local/state/sidecar`"),
      "Where state kept across restarts lives (node maintenance mode)."),
    s("XDG_STATE_HOME", ServiceManager, Unset,
      "Base of the default state directory (`$XDG_STATE_HOME/sidecar`)."),
    s("NOTIFY_SOCKET", ServiceManager, Unset,
      "Set by systemd for `Type=notify`: the daemon reports `READY=1` there once plugins are loaded and the API and gossip listen."),
    s("WATCHDOG_USEC", ServiceManager, Unset,
      "Set by systemd from `WatchdogSec=`: the daemon sends `WATCHDOG=1` every half period while its gossip and announcer loops make progress, and stops when one stalls, so systemd restarts it."),
    s("WATCHDOG_PID", ServiceManager, Unset,
      "Set by systemd: the watchdog applies only when it names this process."),
    s("SIDECAR_TEST_STALL", ServiceManager, Unset,
      "For tests of the watchdog only: `gossip:<duration>` or `announcer:<duration>` freezes that loop after the duration."),
];

/// The entry for `name`.
pub fn get(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// A flag's `--help` text: the table's description and default (clap adds the variable).
pub fn flag_help(name: &str) -> String {
    match get(name) {
        Some(s) => format!(
            "{} [default: {}]",
            s.help.replace('`', ""),
            s.default_text().replace('`', "")
        ),
        None => String::new(),
    }
}

/// The settings the agent has no flag for, grouped, for the agent's `--help` (the
/// client commands' own flags are listed too, with their variables).
pub fn env_only_help() -> String {
    let mut out = String::from(
        "Settings read from the environment only (flags above override their variables; the \
         full reference is docs/configuration.md, or `sidecar config reference`):\n",
    );
    for group in Group::ALL {
        let rows: Vec<&Setting> = SETTINGS
            .iter()
            .filter(|s| s.group == group && (s.flag.is_none() || group == Group::Client))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}:", group.title());
        for s in rows {
            let flag = s.flag.map(|f| format!(" (--{f})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}{flag}  [default: {}]\n          {}",
                s.name,
                s.default_text().replace('`', ""),
                s.help.replace('`', "")
            );
        }
    }
    out
}

/// `docs/configuration.md`.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `sidecar config reference` from the daemon's table of settings; \
         a test fails when this file and the table differ. Do not edit by hand. -->\n\n\
         Every setting is an environment variable; the common ones also have a flag of \
         `sidecar agent` (and of a bare `sidecar`), which wins over the variable. \
         `sidecar agent --help` lists both. Where Sidecar also read a bare name (`SEEDS` \
         for `SIDECAR_SEEDS`), it is given in brackets and read when the full name is not \
         set. A variable set to the empty string counts as set. Durations are Go \
         durations (`1.5s`, `2m`, `1h`); booleans are Go's (`true`, `false`, `1`, `0`, \
         `t`, `f`); lists are comma-separated. A value that does not parse stops the \
         start with a message naming the variable.\n",
    );
    for group in Group::ALL {
        let rows: Vec<&Setting> = SETTINGS.iter().filter(|s| s.group == group).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n## {}\n\n| variable | flag | default | meaning |\n|---|---|---|---|\n",
            group.title()
        );
        for s in rows {
            let name = match s.fallback {
                Some(b) => format!("`{}` (`{b}`)", s.name),
                None => format!("`{}`", s.name),
            };
            let flag = s
                .flag
                .map_or_else(|| "–".to_string(), |f| format!("`--{f}`"));
            let _ = writeln!(
                out,
                "| {name} | {flag} | {} | {} |",
                s.default_text(),
                s.help
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_entries_complete() {
        let mut seen = BTreeSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(!s.help.is_empty(), "{} has no description", s.name);
        }
    }

    /// Every variable the configuration code reads is in the table: a setting added
    /// without its entry fails here, naming it.
    #[test]
    fn every_variable_read_by_the_configuration_code_is_in_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
        let mut missing = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("src/config") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == "settings.rs") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for name in quoted_variables(&text) {
                if get(&name).is_none()
                    && !SETTINGS.iter().any(|s| s.fallback == Some(name.as_str()))
                {
                    missing.insert(format!("{name} ({})", path.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "read but not in config/settings.rs SETTINGS: {missing:?}"
        );
    }

    /// `"SIDECAR_X"`-like string literals.
    fn quoted_variables(text: &str) -> Vec<String> {
        const PREFIXES: [&str; 11] = [
            "K8S_",
            "SIDECAR_",
            "HAPROXY_",
            "ENVOY_",
            "DOCKER_",
            "STATIC_",
            "SERVICES_",
            "LISTENERS_",
            "NOTIFY_",
            "WATCHDOG_",
            "XDG_",
        ];
        let mut out = Vec::new();
        for piece in text.split('"').skip(1).step_by(2) {
            if PREFIXES.iter().any(|p| piece.starts_with(p))
                && piece
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                out.push(piece.to_string());
            }
        }
        out
    }

    #[test]
    fn the_reference_page_is_generated_from_the_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == reference_markdown(),
            "docs/configuration.md differs from the settings table; regenerate it with \
             `sidecar config reference > docs/configuration.md`"
        );
        for s in SETTINGS {
            assert!(on_disk.contains(&format!("`{}`", s.name)), "{}", s.name);
        }
    }
}
