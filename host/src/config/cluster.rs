//! The cluster's settings: Sidecar's variables (`SIDECAR_SEEDS`, `SIDECAR_BIND_PORT`,
//! `SIDECAR_PUSH_PULL_INTERVAL`, `SIDECAR_GOSSIP_MESSAGES`, `SIDECAR_GOSSIP_INTERVAL`,
//! `SIDECAR_HANDOFF_QUEUE_DEPTH`) plus ours (`SIDECAR_BIND_IP`, encryption keys, the
//! insecure opt-in and the gossip limits), and the rule that decides whether gossip
//! may run unauthenticated ([`GossipSecurity`]).

use crate::config::AgentArgs;
use crate::config::agent::{ConfigError, CoreConfig};
use crate::config::env::{Env, split_list};
use crate::config::settings::flag_help;
use sidecar_cluster::crypto::{KeyError, Keyring};
use sidecar_cluster::swim::SwimConfig;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Flags of the cluster group that Sidecar did not have.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    #[arg(long = "bind-port", env = "SIDECAR_BIND_PORT", help = flag_help("SIDECAR_BIND_PORT"))]
    pub bind_port: Option<u16>,
    #[arg(long = "encryption-keys-file", env = "SIDECAR_ENCRYPTION_KEYS_FILE", help = flag_help("SIDECAR_ENCRYPTION_KEYS_FILE"))]
    pub encryption_keys_file: Option<PathBuf>,
    /// A Go boolean in the variable, as everywhere else.
    #[arg(long = "gossip-insecure", env = "SIDECAR_GOSSIP_INSECURE", help = flag_help("SIDECAR_GOSSIP_INSECURE"),
          action = clap::ArgAction::SetTrue, value_parser = crate::config::env::parse_go_bool)]
    pub gossip_insecure: bool,
    #[arg(long = "join-retry", env = "SIDECAR_JOIN_RETRY", help = flag_help("SIDECAR_JOIN_RETRY"),
          action = clap::ArgAction::SetTrue, value_parser = crate::config::env::parse_go_bool)]
    pub join_retry: bool,
    #[arg(long = "gossip-wire", env = "SIDECAR_GOSSIP_WIRE", help = flag_help("SIDECAR_GOSSIP_WIRE"))]
    pub gossip_wire: Option<String>,
}

/// Which protocol the gossip port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GossipWire {
    /// Our own authenticated wire.
    #[default]
    Native,
    /// HashiCorp memberlist as the Go Sidecar speaks it, plus the native wire on the
    /// same port for nodes that already run it (a rolling migration's middle step).
    Memberlist,
}

impl GossipWire {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "native" | "sidecar" => Ok(GossipWire::Native),
            "memberlist" => Ok(GossipWire::Memberlist),
            other => Err(ConfigError::Invalid(format!(
                "SIDECAR_GOSSIP_WIRE {other:?}: expected native or memberlist"
            ))),
        }
    }
}

/// How often our records are re-stamped on the memberlist wire (Go peers expire a
/// record 80 s after its stamp; the announcer re-checks every 30 s).
pub const MEMBERLIST_RESTAMP: Duration = Duration::from_secs(30);

/// How gossip is protected, decided at start-up from keys, bind address, seeds and the
/// opt-in (see [`GossipSecurity::decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipSecurity {
    /// AES-256-GCM with the configured keyring.
    Encrypted,
    /// No key, but bound to a loopback address: only local processes can reach it.
    Loopback,
    /// No key, no seeds, a non-loopback bind: gossip binds and advertises 127.0.0.1
    /// only (a cluster of one, with a warning), so a bare `sidecar` still runs.
    LoopbackOnly,
    /// No key on a non-loopback address, explicitly allowed (`SIDECAR_GOSSIP_INSECURE`).
    Insecure,
}

impl GossipSecurity {
    /// The rule: keys → encrypted; a loopback bind → fine; the explicit opt-in →
    /// insecure; no seeds → loopback only; otherwise refuse to start.
    pub fn decide(
        keys: bool,
        bind_ip: IpAddr,
        seeds: bool,
        insecure: bool,
    ) -> Result<Self, ConfigError> {
        Ok(if keys {
            GossipSecurity::Encrypted
        } else if bind_ip.is_loopback() {
            GossipSecurity::Loopback
        } else if insecure {
            GossipSecurity::Insecure
        } else if !seeds {
            GossipSecurity::LoopbackOnly
        } else {
            return Err(ConfigError::Invalid(format!(
                "refusing to gossip unauthenticated on {bind_ip} with seeds: anyone who can reach \
                 the gossip port could inject members and routes into every proxy. Give every \
                 node the same key (create one with `sidecar keygen`, set \
                 SIDECAR_ENCRYPTION_KEYS or SIDECAR_ENCRYPTION_KEYS_FILE), bind gossip to \
                 loopback (SIDECAR_BIND_IP), or accept the risk with SIDECAR_GOSSIP_INSECURE=true"
            )));
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_name: String,
    pub cluster_name: String,
    /// Where the UDP and TCP gossip sockets listen.
    pub bind: SocketAddr,
    /// What peers are told to reach us on.
    pub advertise: SocketAddr,
    /// `host` or `host:port` (port defaults to the bind port).
    pub seeds: Vec<String>,
    pub keyring: Option<Keyring>,
    pub swim: SwimConfig,
    /// Inbound datagrams buffered before the core reads them.
    pub handoff_queue_depth: usize,
    pub security: GossipSecurity,
    /// Largest stream body read (`SIDECAR_GOSSIP_MAX_STREAM`, bytes); also the budget
    /// of a records reply we build.
    pub max_stream: usize,
    /// Concurrent inbound gossip TCP connections (`SIDECAR_GOSSIP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// `SIDECAR_GOSSIP_WIRE`.
    pub wire: GossipWire,
    /// What happens when seeds are given and none can be joined at start-up.
    pub join: JoinPolicy,
}

/// Start-up join: Sidecar exits when no seed can be joined ("Failed to join cluster");
/// a host that boots before its seeds may prefer to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPolicy {
    /// Exit non-zero, naming each seed and why it failed (Sidecar's behaviour).
    ExitOnFailure,
    /// Keep retrying with backoff (`SIDECAR_JOIN_RETRY`).
    Retry,
}

pub const DEFAULT_PORT: u16 = 7946;
pub const DEFAULT_MAX_STREAM: usize = 32 << 20;
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

impl ClusterConfig {
    pub fn load(env: &Env, args: &AgentArgs, core: &CoreConfig) -> Result<Self, ConfigError> {
        let seeds = if args.cluster_ip.is_empty() {
            env.list("SIDECAR_SEEDS", Some("SEEDS")).unwrap_or_default()
        } else {
            args.cluster_ip.iter().flat_map(|s| split_list(s)).collect()
        };
        let port = match args.cluster.bind_port {
            Some(p) => p,
            None => env
                .int::<u16>("SIDECAR_BIND_PORT", Some("BIND_PORT"))?
                .unwrap_or(DEFAULT_PORT),
        };
        let bind_ip_s = args
            .bind_ip
            .clone()
            .or_else(|| env.non_empty("SIDECAR_BIND_IP", None))
            .unwrap_or_else(|| "0.0.0.0".into());
        let bind_ip: IpAddr = bind_ip_s.parse().map_err(|_| {
            ConfigError::Invalid(format!("bind IP {bind_ip_s:?} is not an IP address"))
        })?;
        let mut swim = SwimConfig::default();
        if let Some(d) = env.duration("SIDECAR_PUSH_PULL_INTERVAL", Some("PUSH_PULL_INTERVAL"))? {
            // Sidecar: 0 means ALIVE_LIFESPAN - 1 s.
            swim.push_pull_interval = if d.is_zero() {
                Duration::from_secs(79)
            } else {
                d
            };
        }
        if let Some(m) = env.int::<usize>("SIDECAR_GOSSIP_MESSAGES", Some("GOSSIP_MESSAGES"))? {
            swim.gossip_messages = if m == 0 { 3 } else { m };
        }
        if let Some(d) = env.duration("SIDECAR_GOSSIP_INTERVAL", Some("GOSSIP_INTERVAL"))? {
            if d.is_zero() {
                return Err(ConfigError::Invalid(
                    "SIDECAR_GOSSIP_INTERVAL must be positive".into(),
                ));
            }
            swim.gossip_interval = d;
        }
        if let Some(n) = env.int::<usize>("SIDECAR_GOSSIP_MAX_MEMBERS", None)? {
            swim.max_members = n.max(1);
        }
        if let Some(n) = env.int::<u32>("SIDECAR_GOSSIP_NEW_MEMBERS_PER_SECOND", None)? {
            swim.new_members_per_sender = n;
        }
        let max_stream = env
            .int::<usize>("SIDECAR_GOSSIP_MAX_STREAM", None)?
            .unwrap_or(DEFAULT_MAX_STREAM)
            .clamp(4096, sidecar_cluster::wire::MAX_STREAM);
        let max_connections = env
            .int::<usize>("SIDECAR_GOSSIP_MAX_CONNECTIONS", None)?
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .max(1);
        let wire = match args
            .cluster
            .gossip_wire
            .clone()
            .or_else(|| env.string("SIDECAR_GOSSIP_WIRE", None))
        {
            Some(s) => GossipWire::parse(&s)?,
            None => GossipWire::Native,
        };
        // Choosing the memberlist wire is the explicit opt-in to unauthenticated gossip
        // (memberlist as Sidecar runs it has no authentication).
        let insecure = args.cluster.gossip_insecure
            || wire == GossipWire::Memberlist
            || env.bool("SIDECAR_GOSSIP_INSECURE", None)?.unwrap_or(false);
        let handoff_queue_depth = env
            .int::<usize>("SIDECAR_HANDOFF_QUEUE_DEPTH", Some("HANDOFF_QUEUE_DEPTH"))?
            .unwrap_or(1024)
            .max(16);
        let keys_file = args.cluster.encryption_keys_file.clone().or_else(|| {
            env.non_empty("SIDECAR_ENCRYPTION_KEYS_FILE", None)
                .map(PathBuf::from)
        });
        let keys: Vec<String> = match keys_file {
            Some(path) => std::fs::read_to_string(&path)
                .map_err(|e| {
                    ConfigError::Invalid(format!("encryption keys file {}: {e}", path.display()))
                })?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect(),
            None => env
                .list("SIDECAR_ENCRYPTION_KEYS", None)
                .unwrap_or_default(),
        };
        let keyring = if keys.is_empty() {
            None
        } else {
            Some(Keyring::from_base64(&keys).map_err(|e: KeyError| {
                ConfigError::Invalid(format!("SIDECAR_ENCRYPTION_KEYS: {e}"))
            })?)
        };
        let join =
            if args.cluster.join_retry || env.bool("SIDECAR_JOIN_RETRY", None)?.unwrap_or(false) {
                JoinPolicy::Retry
            } else {
                JoinPolicy::ExitOnFailure
            };
        let security =
            GossipSecurity::decide(keyring.is_some(), bind_ip, !seeds.is_empty(), insecure)?;
        // Only gossip's addresses change; records and proxies keep the advertise IP.
        let (bind_ip, advertise_ip) = match security {
            GossipSecurity::LoopbackOnly => {
                (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 1]))
            }
            _ => (bind_ip, core.advertise_ip),
        };
        Ok(ClusterConfig {
            node_name: core.node_name.clone(),
            cluster_name: core.cluster_name.clone(),
            bind: SocketAddr::new(bind_ip, port),
            advertise: SocketAddr::new(advertise_ip, port),
            seeds,
            keyring,
            swim,
            handoff_queue_depth,
            security,
            max_stream,
            max_connections,
            join,
            wire,
        })
    }

    /// Seeds as `host:port` strings, the bind port filled in where missing.
    pub fn seed_targets(&self) -> Vec<String> {
        let port = self.bind.port();
        self.seeds
            .iter()
            .map(|s| {
                if s.parse::<SocketAddr>().is_ok() {
                    s.clone()
                } else if let Ok(ip) = s.parse::<IpAddr>() {
                    SocketAddr::new(ip, port).to_string()
                } else if s
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    s.clone()
                } else {
                    format!("{s}:{port}")
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> CoreConfig {
        let env = Env::from_pairs([
            ("SIDECAR_ADVERTISE_IP", "127.0.0.3"),
            ("SIDECAR_NODE_NAME", "n3"),
        ]);
        CoreConfig::load(&env, &AgentArgs::default()).expect("core")
    }

    #[test]
    fn sidecar_variables_and_defaults() {
        let env = Env::from_pairs([
            ("SIDECAR_SEEDS", "10.0.0.1, seed.example:8000,[::1]:9,::2"),
            ("SIDECAR_PUSH_PULL_INTERVAL", "0"),
            ("GOSSIP_MESSAGES", "0"),
        ]);
        let c = ClusterConfig::load(&env, &AgentArgs::default(), &core())
            .expect_err("seeds without a key on 0.0.0.0");
        assert!(c.to_string().contains("SIDECAR_GOSSIP_INSECURE"), "{c}");
        let env = Env::from_pairs([
            ("SIDECAR_SEEDS", "10.0.0.1, seed.example:8000,[::1]:9,::2"),
            ("SIDECAR_PUSH_PULL_INTERVAL", "0"),
            ("GOSSIP_MESSAGES", "0"),
            ("SIDECAR_GOSSIP_INSECURE", "true"),
        ]);
        let c = ClusterConfig::load(&env, &AgentArgs::default(), &core()).expect("valid");
        assert_eq!(c.security, GossipSecurity::Insecure);
        assert_eq!(c.bind.to_string(), "0.0.0.0:7946");
        assert_eq!(c.advertise.to_string(), "127.0.0.3:7946");
        assert_eq!(c.max_stream, DEFAULT_MAX_STREAM);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(c.swim.max_members, 16_384);
        assert_eq!(c.swim.push_pull_interval, Duration::from_secs(79));
        assert_eq!(c.swim.gossip_messages, 3);
        assert_eq!(
            c.seed_targets(),
            vec![
                "10.0.0.1:7946",
                "seed.example:8000",
                "[::1]:9",
                "[::2]:7946"
            ]
        );
        assert!(c.keyring.is_none());
    }

    #[test]
    fn flags_override_and_keys_are_validated() {
        let env = Env::from_pairs([
            ("SIDECAR_SEEDS", "10.0.0.1"),
            ("SIDECAR_BIND_PORT", "9000"),
            (
                "SIDECAR_ENCRYPTION_KEYS",
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
            ),
        ]);
        let mut args = AgentArgs {
            cluster_ip: vec!["127.0.0.1".into(), "127.0.0.2:7000".into()],
            bind_ip: Some("127.0.0.3".into()),
            ..AgentArgs::default()
        };
        args.cluster.bind_port = Some(7001);
        let c = ClusterConfig::load(&env, &args, &core()).expect("valid");
        assert_eq!(c.seed_targets(), vec!["127.0.0.1:7001", "127.0.0.2:7000"]);
        assert_eq!(c.bind.to_string(), "127.0.0.3:7001");
        assert_eq!(c.keyring.map(|k| k.len()), Some(2));
        let bad = Env::from_pairs([("SIDECAR_ENCRYPTION_KEYS", "c2hvcnQ=")]);
        assert!(ClusterConfig::load(&bad, &AgentArgs::default(), &core()).is_err());
        let bad = Env::from_pairs([("SIDECAR_BIND_PORT", "x")]);
        assert!(ClusterConfig::load(&bad, &AgentArgs::default(), &core()).is_err());
    }

    #[test]
    fn unauthenticated_gossip_needs_loopback_or_the_opt_in() {
        use GossipSecurity::*;
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        let lo: IpAddr = "127.0.0.5".parse().expect("ip");
        let decide =
            |keys, ip, seeds, insecure| GossipSecurity::decide(keys, ip, seeds, insecure).ok();
        assert_eq!(decide(true, any, true, false), Some(Encrypted));
        assert_eq!(decide(true, any, true, true), Some(Encrypted), "keys win");
        assert_eq!(decide(false, lo, true, false), Some(Loopback));
        assert_eq!(decide(false, any, false, false), Some(LoopbackOnly));
        assert_eq!(decide(false, any, true, true), Some(Insecure));
        assert_eq!(decide(false, any, false, true), Some(Insecure));
        assert_eq!(decide(false, any, true, false), None);
    }

    #[test]
    fn no_key_and_no_seeds_gossips_on_loopback_only() {
        let c = ClusterConfig::load(
            &Env::from_pairs([("SIDECAR_BIND_PORT", "7000")]),
            &AgentArgs::default(),
            &core(),
        )
        .expect("the no-configuration run works");
        assert_eq!(c.security, GossipSecurity::LoopbackOnly);
        assert_eq!(c.bind.to_string(), "127.0.0.1:7000");
        assert_eq!(c.advertise.to_string(), "127.0.0.1:7000");
        // The flag is the same opt-in as the variable.
        let mut args = AgentArgs {
            cluster_ip: vec!["10.0.0.1".into()],
            ..AgentArgs::default()
        };
        assert!(ClusterConfig::load(&Env::from_pairs::<&str, &str>([]), &args, &core()).is_err());
        args.cluster.gossip_insecure = true;
        let c = ClusterConfig::load(&Env::from_pairs::<&str, &str>([]), &args, &core())
            .expect("opted in");
        assert_eq!(
            (c.security, c.bind.to_string()),
            (GossipSecurity::Insecure, "0.0.0.0:7946".to_string())
        );
    }

    #[test]
    fn the_memberlist_wire_is_the_opt_in_to_unauthenticated_gossip() {
        let env = Env::from_pairs([
            ("SIDECAR_SEEDS", "10.0.0.1"),
            ("SIDECAR_GOSSIP_WIRE", "memberlist"),
        ]);
        let c = ClusterConfig::load(&env, &AgentArgs::default(), &core()).expect("valid");
        assert_eq!(c.wire, GossipWire::Memberlist);
        assert_eq!(c.security, GossipSecurity::Insecure);
        let mut args = AgentArgs::default();
        args.cluster.gossip_wire = Some("native".into());
        let c =
            ClusterConfig::load(&env, &args, &core()).expect_err("flag wins: native needs a key");
        assert!(c.to_string().contains("SIDECAR_GOSSIP_INSECURE"), "{c}");
        let bad = Env::from_pairs([("SIDECAR_GOSSIP_WIRE", "carrier-pigeon")]);
        let e = ClusterConfig::load(&bad, &AgentArgs::default(), &core()).expect_err("bad wire");
        assert!(e.to_string().contains("carrier-pigeon"), "{e}");
    }

    #[test]
    fn gossip_limits_are_settings() {
        let env = Env::from_pairs([
            ("SIDECAR_BIND_IP", "127.0.0.1"),
            ("SIDECAR_GOSSIP_MAX_STREAM", "65536"),
            ("SIDECAR_GOSSIP_MAX_CONNECTIONS", "2"),
            ("SIDECAR_GOSSIP_MAX_MEMBERS", "100"),
            ("SIDECAR_GOSSIP_NEW_MEMBERS_PER_SECOND", "5"),
        ]);
        let c = ClusterConfig::load(&env, &AgentArgs::default(), &core()).expect("valid");
        assert_eq!(c.security, GossipSecurity::Loopback);
        assert_eq!((c.max_stream, c.max_connections), (65536, 2));
        assert_eq!(
            (c.swim.max_members, c.swim.new_members_per_sender),
            (100, 5)
        );
        let bad = Env::from_pairs([("SIDECAR_GOSSIP_MAX_CONNECTIONS", "many")]);
        assert!(ClusterConfig::load(&bad, &AgentArgs::default(), &core()).is_err());
    }
}
