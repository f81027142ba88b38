//! Which address this host advertises when `SIDECAR_ADVERTISE_IP` is not set.
//!
//! Sidecar took the first private IPv4 address of any interface, which on a Docker host is
//! usually Docker's bridge (`172.17.0.1` on `docker0`): an address peers on other hosts
//! cannot reach. We skip container and VM bridges, tunnels and interfaces that are down,
//! fall back to one of them only when nothing else has a private address (with a
//! warning), and say which interface was chosen and why.

use super::agent::ConfigError;
use super::env::Env;
use std::net::{IpAddr, Ipv4Addr};

/// Name prefixes of interfaces that belong to containers, VMs or overlays.
const VIRTUAL: &[(&str, &str)] = &[
    ("docker", "Docker bridge"),
    ("br-", "Docker network bridge"),
    ("veth", "container veth pair"),
    ("cni", "CNI bridge"),
    ("flannel", "flannel overlay"),
    ("virbr", "libvirt bridge"),
    ("vxlan", "VXLAN tunnel"),
    ("cali", "Calico interface"),
    ("weave", "Weave bridge"),
    ("vethwe", "Weave veth"),
    ("tunl", "IP-in-IP tunnel"),
    ("tun", "tunnel"),
    ("tap", "tap device"),
    ("vnet", "VM tap device"),
    ("lxcbr", "LXC bridge"),
    ("lxdbr", "LXD bridge"),
    ("podman", "Podman bridge"),
    ("cilium", "Cilium interface"),
    ("kube-", "Kubernetes interface"),
    ("genev", "Geneve tunnel"),
];

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub interface: String,
    pub ip: IpAddr,
    pub up: bool,
}

/// The chosen address and what to log about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub ip: IpAddr,
    pub interface: String,
    /// Why this one, and what was skipped and why.
    pub reason: String,
    /// Only a container or VM interface had a private address: peers elsewhere may not
    /// reach it.
    pub doubtful: bool,
}

/// The advertise IP: `flag`, else `SIDECAR_ADVERTISE_IP` (or `ADVERTISE_IP`), else
/// detected (and then how, for the log).
pub fn resolve(env: &Env, flag: Option<String>) -> Result<(IpAddr, Option<Detected>), ConfigError> {
    if let Some(ip) = flag.or_else(|| env.non_empty("SIDECAR_ADVERTISE_IP", Some("ADVERTISE_IP"))) {
        let parsed = ip.parse().map_err(|_| {
            ConfigError::Invalid(format!("advertise IP {ip:?} is not an IP address"))
        })?;
        return Ok((parsed, None));
    }
    let excluded = env
        .list("SIDECAR_EXCLUDE_IPS", Some("EXCLUDE_IPS"))
        .unwrap_or_else(|| vec!["192.168.168.168".to_string()]);
    let found = choose(&system_candidates(), &excluded).ok_or_else(|| {
        ConfigError::Invalid(
            "Failed to find private IP address: set SIDECAR_ADVERTISE_IP or --advertise-ip".into(),
        )
    })?;
    Ok((found.ip, Some(found)))
}

/// Why `name` looks like a container or VM interface, if it does.
pub fn virtual_kind(name: &str) -> Option<&'static str> {
    VIRTUAL
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

fn is_rfc1918(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 10 || (o[0] == 172 && (16..=31).contains(&o[1])) || (o[0] == 192 && o[1] == 168)
}

/// The first private IPv4 address, not excluded, of an interface that is up and not a
/// container or VM interface; else the first private one at all.
pub fn choose(candidates: &[Candidate], excluded: &[String]) -> Option<Detected> {
    let mut skipped = Vec::new();
    let mut fallback: Option<(&Candidate, &'static str)> = None;
    for c in candidates {
        let IpAddr::V4(v4) = c.ip else { continue };
        if !is_rfc1918(v4) {
            continue;
        }
        if excluded.iter().any(|e| e == &v4.to_string()) {
            skipped.push(format!("{} {}: in SIDECAR_EXCLUDE_IPS", c.interface, c.ip));
            continue;
        }
        let why = virtual_kind(&c.interface).or((!c.up).then_some("interface down"));
        match why {
            Some(why) => {
                skipped.push(format!("{} {}: {why}", c.interface, c.ip));
                fallback = fallback.or(Some((c, why)));
            }
            None => {
                let mut reason = "the first private IPv4 address of an interface that is up \
                                  and not a container or VM interface"
                    .to_string();
                if !skipped.is_empty() {
                    reason.push_str(&format!("; skipped {}", skipped.join(", ")));
                }
                return Some(Detected {
                    ip: c.ip,
                    interface: c.interface.clone(),
                    reason,
                    doubtful: false,
                });
            }
        }
    }
    fallback.map(|(c, why)| Detected {
        ip: c.ip,
        interface: c.interface.clone(),
        reason: format!(
            "no other interface has a private IPv4 address, so this {why}'s; peers on other \
             hosts may not reach it: set SIDECAR_ADVERTISE_IP"
        ),
        doubtful: true,
    })
}

/// This machine's interface addresses, in the kernel's order, with whether each
/// interface is administratively up (`IFF_UP`).
pub fn system_candidates() -> Vec<Candidate> {
    let up = interfaces_up();
    if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .map(|i| Candidate {
                    up: up.get(&i.name).copied().unwrap_or(true),
                    ip: i.ip(),
                    interface: i.name,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Interface name -> `IFF_UP`, from `getifaddrs(3)` (the network namespace we run in,
/// which `/sys/class/net` need not be).
fn interfaces_up() -> std::collections::HashMap<String, bool> {
    let mut out = std::collections::HashMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: on success getifaddrs points `head` at a list we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list, valid until freeifaddrs below.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_name.is_null() {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
            out.entry(name.to_string_lossy().into_owned())
                .and_modify(|u| *u |= up)
                .or_insert(up);
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(interface: &str, ip: &str, up: bool) -> Candidate {
        Candidate {
            interface: interface.into(),
            ip: ip.parse().expect("ip"),
            up,
        }
    }

    #[test]
    fn container_and_vm_bridges_are_skipped_with_the_reason_logged() {
        let ifs = [
            c("lo", "127.0.0.1", true),
            c("docker0", "172.17.0.1", true),
            c("br-1a2b3c", "172.18.0.1", true),
            c("veth12ab", "10.200.0.1", true),
            c("cni0", "10.22.0.1", true),
            c("flannel.1", "10.244.0.0", true),
            c("virbr0", "192.168.122.1", true),
            c("eth1", "10.9.9.9", false),
            c("eth0", "8.8.4.4", true),
            c("ens5", "10.0.0.5", true),
            c("ens6", "10.0.0.6", true),
        ];
        let d = choose(&ifs, &[]).expect("one");
        assert_eq!(
            (d.ip.to_string(), d.interface.as_str(), d.doubtful),
            ("10.0.0.5".to_string(), "ens5", false)
        );
        for skipped in [
            "docker0 172.17.0.1: Docker bridge",
            "br-1a2b3c 172.18.0.1: Docker network bridge",
            "veth12ab 10.200.0.1: container veth pair",
            "cni0 10.22.0.1: CNI bridge",
            "flannel.1 10.244.0.0: flannel overlay",
            "virbr0 192.168.122.1: libvirt bridge",
            "eth1 10.9.9.9: interface down",
        ] {
            assert!(d.reason.contains(skipped), "{skipped} in {}", d.reason);
        }
    }

    #[test]
    fn every_named_kind_is_recognised_and_real_nics_are_not() {
        for name in [
            "docker0",
            "br-0f",
            "veth0",
            "cni0",
            "flannel.1",
            "virbr0",
            "vxlan.calico",
            "cali123",
            "weave",
            "tun0",
            "tap0",
            "tunl0",
            "vnet3",
            "podman0",
        ] {
            assert!(virtual_kind(name).is_some(), "{name}");
        }
        for name in ["eth0", "ens5", "enp0s3", "bond0", "wlan0", "eno1"] {
            assert_eq!(virtual_kind(name), None, "{name}");
        }
    }

    #[test]
    fn exclusions_apply_and_a_bridge_is_the_last_resort() {
        let ifs = [
            c("docker0", "172.17.0.1", true),
            c("eth0", "192.168.168.168", true),
        ];
        let d = choose(&ifs, &["192.168.168.168".into()]).expect("fallback");
        assert_eq!(d.ip.to_string(), "172.17.0.1");
        assert!(d.doubtful);
        assert!(d.reason.contains("SIDECAR_ADVERTISE_IP"), "{}", d.reason);
        assert_eq!(choose(&[c("eth0", "8.8.8.8", true)], &[]), None);
        assert_eq!(choose(&[], &[]), None);
    }
}
