//! Per-instance checks and quarantine of catalog records before an emitter sees them.
//!
//! Records come from the network and from files anyone on a host can edit. One record a
//! proxy cannot take (a name where an IP belongs, port 0, control characters) must not
//! hold back every other service's change: such an instance is quarantined on its own,
//! with a reason, and the rest flow on. The HAProxy driver also quarantines instances
//! that `haproxy -c` rejects ([`Quarantine::reject`], found by [`Bisect`]).
//!
//! An instance leaves quarantine when it disappears (or becomes a tombstone) or when its
//! content changes to something that passes.

use serde::Serialize;
use sidecar_catalog::{Service, Status};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// IDs, names and hostnames longer than this are refused (DNS's limit for a name).
pub const MAX_NAME: usize = 253;

/// What the proxy can take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Servers are addressed by the instance's Hostname (`HAPROXY_USE_HOSTNAMES`): it
    /// must be a syntactically valid hostname. Otherwise every exported port needs a
    /// literal IP address, so nothing is resolved while a config is checked or loaded.
    pub use_hostnames: bool,
}

/// Why a record cannot be rendered, or `Ok`.
pub fn check(s: &Service, rules: &Rules) -> Result<(), String> {
    text_field("ID", &s.id)?;
    text_field("Name", &s.name)?;
    text_field("Hostname", &s.hostname)?;
    if rules.use_hostnames && !is_ip_literal(&s.hostname) && !is_hostname(&s.hostname) {
        return Err(format!(
            "Hostname {:?} is not a valid hostname (HAPROXY_USE_HOSTNAMES addresses servers by it)",
            s.hostname
        ));
    }
    for p in s.ports.iter().filter(|p| p.service_port != 0) {
        if p.port == 0 {
            return Err(format!("ServicePort {} maps to port 0", p.service_port));
        }
        if !rules.use_hostnames && !is_ip_literal(&p.ip) {
            return Err(format!(
                "IP {:?} of port {} is not a literal IP address (set HAPROXY_USE_HOSTNAMES to address servers by name)",
                p.ip, p.port
            ));
        }
    }
    Ok(())
}

fn text_field(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("empty {what}"))
    } else if v.len() > MAX_NAME {
        Err(format!("{what} longer than {MAX_NAME} bytes"))
    } else if v.chars().any(char::is_control) {
        Err(format!("{what} {v:?} contains control characters"))
    } else {
        Ok(())
    }
}

/// An IPv4 or IPv6 address (IPv6 possibly in brackets), nothing to resolve.
pub fn is_ip_literal(s: &str) -> bool {
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>().is_ok()
}

/// RFC 1123 syntax: dot-separated labels of 1-63 letters, digits and inner hyphens, at
/// most 253 bytes, an optional trailing dot.
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why an instance is out of the proxy's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// It failed [`check`].
    Invalid,
    /// The proxy's own check refused a config with it (and accepted one without it).
    Rejected,
    /// Not checked yet: the check budget of this change ran out; retried shortly.
    HeldBack,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Invalid, Kind::Rejected, Kind::HeldBack];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invalid => "invalid",
            Kind::Rejected => "rejected",
            Kind::HeldBack => "held_back",
        }
    }
}

/// One quarantined instance as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    pub id: String,
    pub service: String,
    pub host: String,
    pub kind: Kind,
    pub reason: String,
    /// RFC 3339: when it entered quarantine (for this content and reason).
    pub since: String,
}

#[derive(Debug)]
struct Entry {
    info: Quarantined,
    fingerprint: u64,
}

/// The quarantined instances, keyed by (Hostname, ID).
#[derive(Debug, Default)]
pub struct Quarantine {
    entries: BTreeMap<(String, String), Entry>,
}

/// What [`Quarantine::screen`] let through, and the instances it newly quarantined.
#[derive(Debug, Default)]
pub struct Screened {
    pub admitted: Vec<Service>,
    pub newly: Vec<Quarantined>,
}

impl Quarantine {
    /// Checks every record of a snapshot (in order) and returns those the emitter may
    /// see. Invalid tombstones are dropped without a report (they describe nothing that
    /// runs); rejected instances stay out until their content changes; held-back ones
    /// are tried again; entries whose instance is gone are forgotten.
    pub fn screen(&mut self, services: Vec<Service>, rules: &Rules, now: &str) -> Screened {
        let mut out = Screened::default();
        let mut next = BTreeMap::new();
        for s in services {
            let verdict = check(&s, rules);
            if s.status == Status::Tombstone {
                if verdict.is_ok() {
                    out.admitted.push(s);
                }
                continue;
            }
            let key = (s.hostname.clone(), s.id.clone());
            let fingerprint = fingerprint(&s);
            let prev = self
                .entries
                .remove(&key)
                .filter(|e| e.fingerprint == fingerprint);
            match verdict {
                Err(reason) => {
                    let since = match prev {
                        Some(e) if e.info.kind == Kind::Invalid && e.info.reason == reason => {
                            e.info.since
                        }
                        _ => {
                            let q = quarantined(&s, Kind::Invalid, reason.clone(), now);
                            out.newly.push(q);
                            now.to_string()
                        }
                    };
                    let info = quarantined(&s, Kind::Invalid, reason, &since);
                    next.insert(key, Entry { info, fingerprint });
                }
                Ok(()) => match prev {
                    Some(e) if e.info.kind == Kind::Rejected => {
                        next.insert(key, e);
                    }
                    _ => out.admitted.push(s),
                },
            }
        }
        self.entries = next;
        out
    }

    /// Quarantines `s` because the proxy refused a config with it. Returns the entry.
    pub fn reject(&mut self, s: &Service, reason: String, now: &str) -> Quarantined {
        self.put(s, Kind::Rejected, reason, now)
    }

    /// Leaves `s` out of this change only (see [`Kind::HeldBack`]).
    pub fn hold_back(&mut self, s: &Service, reason: String, now: &str) -> Quarantined {
        self.put(s, Kind::HeldBack, reason, now)
    }

    fn put(&mut self, s: &Service, kind: Kind, reason: String, now: &str) -> Quarantined {
        let info = quarantined(s, kind, reason, now);
        self.entries.insert(
            (s.hostname.clone(), s.id.clone()),
            Entry {
                info: info.clone(),
                fingerprint: fingerprint(s),
            },
        );
        info
    }

    /// Everything quarantined now, by host and ID.
    pub fn list(&self) -> Vec<Quarantined> {
        self.entries.values().map(|e| e.info.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn quarantined(s: &Service, kind: Kind, reason: String, since: &str) -> Quarantined {
    Quarantined {
        id: s.id.clone(),
        service: s.name.clone(),
        host: s.hostname.clone(),
        kind,
        reason,
        since: since.to_string(),
    }
}

/// The content that decides how an instance renders (not its status or timestamps: a
/// rejected instance that flaps between healthy and not is still the same instance).
fn fingerprint(s: &Service) -> u64 {
    let parts = serde_json::to_vec(&(
        &s.id,
        &s.name,
        &s.image,
        &s.hostname,
        &s.ports,
        &s.proxy_mode,
    ))
    .unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&parts)
}

/// Finds the instances a proxy check refuses, with a bounded number of checks.
///
/// Sans-IO: [`Bisect::next_probe`] names a subset of instances (indices, ascending) to
/// render and check, [`Bisect::report`] takes the outcome. The first probe is the empty
/// set: if even that fails, the fault is not in any instance ([`Bisect::base_failure`]).
/// Then a passing set grows chunk by chunk, starting from all instances (known to fail):
/// a failing chunk is halved, a failing single instance is a culprit. One culprit among
/// `n` costs at most about `2·log2(n)` checks; when `budget` runs out, the chunks not yet
/// checked are left [`Bisect::untested`].
#[derive(Debug)]
pub struct Bisect<T> {
    budget: usize,
    runs: usize,
    good: Vec<usize>,
    good_result: Option<T>,
    bad: Vec<(usize, String)>,
    untested: Vec<usize>,
    base_failure: Option<String>,
    stack: Vec<Task>,
    pending: Option<Vec<usize>>,
}

#[derive(Debug)]
enum Task {
    /// Check `good ∪ chunk`.
    Test(Vec<usize>),
    /// `good ∪ chunk` is known to fail with this message.
    Failing(Vec<usize>, String),
    /// After the first half of a failing chunk: the second half is known to fail if the
    /// first half was all accepted (nothing culprit or untested was added meanwhile).
    SecondHalf {
        chunk: Vec<usize>,
        marks: (usize, usize),
        error: String,
    },
}

impl<T> Bisect<T> {
    /// `n` instances whose complete set failed with `error`.
    pub fn new(n: usize, budget: usize, error: String) -> Self {
        Bisect {
            budget: budget.max(1),
            runs: 0,
            good: Vec::new(),
            good_result: None,
            bad: Vec::new(),
            untested: Vec::new(),
            base_failure: None,
            stack: vec![Task::Failing((0..n).collect(), error)],
            pending: None,
        }
    }

    /// The next subset to check, or `None` when done.
    pub fn next_probe(&mut self) -> Option<Vec<usize>> {
        if self.pending.is_some() {
            return None;
        }
        if self.runs == 0 {
            self.pending = Some(Vec::new());
            return Some(Vec::new());
        }
        while let Some(task) = self.stack.pop() {
            match task {
                Task::Failing(chunk, error) if chunk.len() <= 1 => {
                    self.bad
                        .extend(chunk.into_iter().map(|i| (i, error.clone())));
                }
                Task::Failing(mut chunk, error) => {
                    let second = chunk.split_off(chunk.len() / 2);
                    self.stack.push(Task::SecondHalf {
                        chunk: second,
                        marks: (self.bad.len(), self.untested.len()),
                        error,
                    });
                    self.stack.push(Task::Test(chunk));
                }
                Task::SecondHalf {
                    chunk,
                    marks,
                    error,
                } => {
                    if marks == (self.bad.len(), self.untested.len()) {
                        self.stack.push(Task::Failing(chunk, error));
                    } else {
                        self.stack.push(Task::Test(chunk));
                    }
                }
                Task::Test(chunk) if chunk.is_empty() => {}
                Task::Test(chunk) => {
                    if self.runs >= self.budget {
                        self.untested.extend(chunk);
                        continue;
                    }
                    let mut probe = self.good.clone();
                    probe.extend_from_slice(&chunk);
                    probe.sort_unstable();
                    self.pending = Some(chunk);
                    return Some(probe);
                }
            }
        }
        None
    }

    /// The outcome of the last probe: `Ok` with what the caller keeps for an accepted
    /// set (the rendered config), or the refusal.
    pub fn report(&mut self, outcome: Result<T, String>) {
        let Some(chunk) = self.pending.take() else {
            return;
        };
        let first = self.runs == 0;
        self.runs += 1;
        match outcome {
            Ok(kept) => {
                self.good.extend(chunk);
                self.good_result = Some(kept);
            }
            Err(e) if first => {
                self.base_failure = Some(e);
                self.stack.clear();
            }
            Err(e) if chunk.len() == 1 => {
                self.bad.extend(chunk.into_iter().map(|i| (i, e.clone())))
            }
            Err(e) => self.stack.push(Task::Failing(chunk, e)),
        }
    }

    /// Checks run so far.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// Set when the empty set failed: no instance is to blame.
    pub fn base_failure(&self) -> Option<&str> {
        self.base_failure.as_deref()
    }

    /// The instances refused on their own, with the refusal.
    pub fn culprits(&self) -> &[(usize, String)] {
        &self.bad
    }

    /// Instances not checked for lack of budget.
    pub fn untested(&self) -> &[usize] {
        &self.untested
    }

    /// The largest accepted set, ascending, and what `report` kept for it.
    pub fn accepted(self) -> (Vec<usize>, Option<T>) {
        let mut good = self.good;
        good.sort_unstable();
        (good, self.good_result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidecar_catalog::{Port, PortKind};
    use std::collections::BTreeSet;

    fn svc(id: &str, ip: &str, port: u16) -> Service {
        Service {
            id: id.into(),
            name: "web".into(),
            hostname: "host1".into(),
            ports: vec![Port {
                kind: PortKind::Tcp,
                port,
                service_port: 10000,
                ip: ip.into(),
            }],
            status: Status::Alive,
            ..Service::default()
        }
    }

    #[test]
    fn literal_ips_unless_hostnames() {
        let lit = Rules::default();
        let names = Rules {
            use_hostnames: true,
        };
        assert!(check(&svc("a", "10.0.0.1", 80), &lit).is_ok());
        assert!(check(&svc("a", "::1", 80), &lit).is_ok());
        assert!(check(&svc("a", "[fe80::1]", 80), &lit).is_ok());
        let e = check(&svc("a", "nonexistent.invalid", 80), &lit).expect_err("a name");
        assert!(e.contains("not a literal IP"), "{e}");
        assert!(check(&svc("a", "", 80), &lit).is_err());
        // In hostname mode the Hostname is the address; the IP is not used.
        assert!(check(&svc("a", "nonexistent.invalid", 80), &names).is_ok());
        let mut bad_host = svc("a", "10.0.0.1", 80);
        bad_host.hostname = "host_1 x".into();
        assert!(check(&bad_host, &names).is_err());
        assert!(check(&bad_host, &lit).is_ok(), "sanitised into names");
        // Only exported ports matter.
        let mut internal = svc("a", "whatever", 0);
        internal.ports[0].service_port = 0;
        assert!(check(&internal, &lit).is_ok());
    }

    #[test]
    fn ports_and_names() {
        let r = Rules::default();
        assert!(
            check(&svc("a", "10.0.0.1", 0), &r)
                .expect_err("port 0")
                .contains("port 0")
        );
        assert!(check(&svc("", "10.0.0.1", 80), &r).is_err());
        assert!(check(&svc("a\nserver x", "10.0.0.1", 80), &r).is_err());
        assert!(check(&svc(&"x".repeat(254), "10.0.0.1", 80), &r).is_err());
        assert!(
            check(&svc("a b", "10.0.0.1", 80), &r).is_ok(),
            "spaces are sanitised"
        );
        for ok in ["h", "a.b-c.example", "x1.", "0a"] {
            assert!(is_hostname(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a_b", "a b", &"a".repeat(64)] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn quarantine_follows_content() {
        let r = Rules::default();
        let mut q = Quarantine::default();
        let good = svc("good", "10.0.0.1", 80);
        let bad = svc("bad", "nonexistent.invalid", 80);
        let out = q.screen(vec![bad.clone(), good.clone()], &r, "t1");
        assert_eq!(out.admitted, std::slice::from_ref(&good));
        assert_eq!(out.newly.len(), 1);
        assert_eq!(q.list()[0].kind, Kind::Invalid);
        // Same content: still out, not new, `since` kept.
        let out = q.screen(vec![bad.clone(), good.clone()], &r, "t2");
        assert!(out.newly.is_empty());
        assert_eq!(q.list()[0].since, "t1");
        // Fixed: back in.
        let fixed = svc("bad", "10.0.0.2", 80);
        let out = q.screen(vec![fixed.clone(), good.clone()], &r, "t3");
        assert_eq!(out.admitted.len(), 2);
        assert!(q.is_empty());

        // Rejected by the proxy: out while unchanged, even when its status flaps.
        q.reject(&fixed, "refused".into(), "t4");
        let mut flapped = fixed.clone();
        flapped.status = Status::Unhealthy;
        assert_eq!(
            q.screen(vec![flapped, good.clone()], &r, "t5").admitted,
            std::slice::from_ref(&good)
        );
        assert_eq!(q.len(), 1);
        let changed = svc("bad", "10.0.0.3", 80);
        assert_eq!(
            q.screen(vec![changed, good.clone()], &r, "t6")
                .admitted
                .len(),
            2
        );

        // Gone (or a tombstone): forgotten. Invalid tombstones are dropped silently.
        q.reject(&good, "refused".into(), "t7");
        let mut dead = bad.clone();
        dead.status = Status::Tombstone;
        let out = q.screen(vec![dead], &r, "t8");
        assert!(out.admitted.is_empty() && out.newly.is_empty() && q.is_empty());

        // Held back: tried again next time.
        q.hold_back(&good, "later".into(), "t9");
        assert_eq!(q.screen(vec![good.clone()], &r, "t10").admitted, [good]);
        assert!(q.is_empty());
    }

    /// Runs a bisection against a verifier that refuses any set containing a culprit.
    fn run(n: usize, culprits: &[usize], budget: usize) -> Bisect<Vec<usize>> {
        let culprits: BTreeSet<usize> = culprits.iter().copied().collect();
        let mut b = Bisect::new(n, budget, "full set refused".into());
        while let Some(probe) = b.next_probe() {
            let hit = probe.iter().find(|i| culprits.contains(i));
            b.report(match hit {
                Some(i) => Err(format!("instance {i} refused")),
                None => Ok(probe),
            });
        }
        b
    }

    #[test]
    fn bisection_isolates_culprits_within_log_bounds() {
        for n in [1, 2, 3, 7, 64, 1000, 10_000] {
            for c in [0, n / 2, n - 1] {
                let b = run(n, &[c], 1000);
                let log = (usize::BITS - n.leading_zeros()) as usize;
                assert!(b.runs() <= 2 * log + 1, "n={n} c={c}: {} runs", b.runs());
                // The refusal of the culprit's own check, or of the set it was
                // inferred from (all of whose other members were accepted).
                let [(i, why)] = b.culprits() else {
                    panic!("n={n}: {:?}", b.culprits());
                };
                assert_eq!(*i, c);
                assert!(why == &format!("instance {c} refused") || why == "full set refused");
                assert!(b.untested().is_empty());
                let (good, kept) = b.accepted();
                assert_eq!(good.len(), n - 1);
                assert_eq!(
                    kept.unwrap_or_default(),
                    good,
                    "the kept render is the accepted set"
                );
            }
        }
        let b = run(100, &[3, 50, 99], 1000);
        let mut found: Vec<usize> = b.culprits().iter().map(|(i, _)| *i).collect();
        found.sort_unstable();
        assert_eq!(found, [3, 50, 99]);
        assert_eq!(b.accepted().0.len(), 97);
    }

    #[test]
    fn bisection_respects_the_budget_and_the_base_case() {
        // Every instance is bad: the budget stops the search, the rest is untested.
        let b = run(1000, &(0..1000).collect::<Vec<_>>(), 12);
        assert_eq!(b.runs(), 12);
        assert_eq!(b.culprits().len() + b.untested().len(), 1000);
        assert!(b.accepted().0.is_empty());

        // The empty set fails (a broken template): nobody is blamed.
        let mut b: Bisect<()> = Bisect::new(5, 10, "full".into());
        assert_eq!(b.next_probe(), Some(vec![]));
        b.report(Err("template broken".into()));
        assert_eq!(b.next_probe(), None);
        assert_eq!(b.base_failure(), Some("template broken"));
        assert!(b.culprits().is_empty());
    }
}
