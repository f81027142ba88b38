//! Driver behaviour with stand-in verify/reload commands (the real binary is exercised
//! by the end-to-end tests).

use super::*;
use crate::config::Env;
use crate::proxy::validate::Kind;
use async_trait::async_trait;
use parking_lot::Mutex;
use sidecar_plugin_host::{EmitRequest, PluginError};

/// Returns whatever text it holds, or an error when empty.
struct FakeEmitter(Mutex<String>);

#[async_trait]
impl ProxyEmitter for FakeEmitter {
    async fn emit(&self, _req: EmitRequest) -> Result<Emitted, PluginError> {
        let text = self.0.lock().clone();
        if text.is_empty() {
            return Err(PluginError::Trap {
                plugin: "fake".into(),
                detail: "boom".into(),
            });
        }
        Ok(Emitted::ConfigFile(text))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    driver: HaproxyDriver,
    emitter: Arc<FakeEmitter>,
    live: std::path::PathBuf,
    reloads: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let live = dir.path().join("haproxy.cfg");
    let reloads = dir.path().join("reloads");
    let mut cfg = HaproxyConfig::load(&Env::default()).expect("defaults");
    cfg.config_file = live.clone();
    cfg.min_reload_interval = std::time::Duration::ZERO;
    // "Valid" configs contain VALID; HAProxy "refuses" configs containing REFUSE.
    cfg.verify_command = Some(format!("grep -q VALID {}", live.display()));
    cfg.reload_command = Some(format!(
        "echo reload >> {r}; ! grep -q REFUSE {l}",
        r = reloads.display(),
        l = live.display()
    ));
    let emitter = Arc::new(FakeEmitter(Mutex::new(String::new())));
    let status = Arc::new(HaproxyStatus::new("test"));
    let driver = HaproxyDriver::new(cfg, emitter.clone(), status);
    Fixture {
        _dir: dir,
        driver,
        emitter,
        live,
        reloads,
    }
}

impl Fixture {
    fn reload_count(&self) -> usize {
        std::fs::read_to_string(&self.reloads)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    async fn render(&mut self, text: &str) {
        *self.emitter.0.lock() = text.to_string();
        let snap = crate::shared_catalog::SharedCatalog::with_defaults("h", "c")
            .0
            .snapshot();
        self.driver.deliver(&snap).await;
    }

    fn live(&self) -> String {
        std::fs::read_to_string(&self.live).unwrap_or_default()
    }
}

#[tokio::test]
async fn good_config_is_installed_and_reloaded_once() {
    let mut f = fixture();
    f.render("VALID 1").await;
    assert_eq!(f.live(), "VALID 1");
    assert_eq!(f.reload_count(), 1);
    f.render("VALID 1").await;
    assert_eq!(f.reload_count(), 1, "unchanged config: no reload");
    let st = f.driver.status.state();
    assert_eq!(
        st.last_good.expect("delivered").version,
        version_of("VALID 1")
    );
    assert!(st.last_error.is_none());
    assert!(!write::candidate_path(&f.live).exists());
}

#[tokio::test]
async fn config_failing_verification_never_replaces_the_live_one() {
    let mut f = fixture();
    f.render("VALID 1").await;
    f.render("broken").await;
    assert_eq!(f.live(), "VALID 1");
    assert_eq!(f.reload_count(), 1);
    let st = f.driver.status.state();
    let err = st.last_error.expect("error visible");
    assert_eq!(err.stage, "verify");
    assert_eq!(
        f.driver
            .status
            .counters
            .verify_failures
            .load(Ordering::Relaxed),
        1
    );
    assert!(
        !write::candidate_path(&f.live).exists(),
        "candidate cleaned up"
    );
    // The next good config goes through and clears the error.
    f.render("VALID 2").await;
    assert_eq!(f.live(), "VALID 2");
    assert!(f.driver.status.state().last_error.is_none());
}

#[tokio::test]
async fn refused_reload_restores_the_previous_file() {
    let mut f = fixture();
    f.render("VALID 1").await;
    f.render("VALID REFUSE").await;
    assert_eq!(f.live(), "VALID 1", "rolled back");
    let st = f.driver.status.state();
    assert_eq!(st.last_error.expect("error").stage, "reload");
    assert_eq!(
        f.driver.status.counters.rollbacks.load(Ordering::Relaxed),
        1
    );
    let status = Arc::new(crate::proxy::ProxyStatus::default());
    status.set_haproxy(f.driver.status.clone());
    let scraped = crate::metrics::scrape(|r| status.register_metrics(r));
    crate::metrics::assert_lines(&scraped, &["sidecar_haproxy_config_ok 0"]);
}

#[tokio::test]
async fn emitter_failure_keeps_the_last_good_config() {
    let mut f = fixture();
    f.render("VALID 1").await;
    f.render("").await;
    assert_eq!(f.live(), "VALID 1");
    assert_eq!(f.reload_count(), 1);
    assert_eq!(
        f.driver.status.state().last_error.expect("error").stage,
        "emit"
    );
}

/// Renders `VALID` (or the fixed text it holds) and one line per instance ID; the
/// fixture's verify command refuses configs with `bad` in them.
struct IdEmitter(Mutex<Option<String>>);

#[async_trait]
impl ProxyEmitter for IdEmitter {
    async fn emit(&self, req: EmitRequest) -> Result<Emitted, PluginError> {
        let mut text = self.0.lock().clone().unwrap_or_else(|| "VALID\n".into());
        for s in &req.services {
            text.push_str(&format!("server {}\n", s.id));
        }
        Ok(Emitted::ConfigFile(text))
    }
}

fn id_fixture(max_verify_runs: usize) -> (Fixture, Arc<IdEmitter>) {
    let mut f = fixture();
    let emitter = Arc::new(IdEmitter(Mutex::new(None)));
    let mut cfg = f.driver.cfg.clone();
    cfg.verify_command = Some(format!(
        "grep -q VALID {l} && ! grep -q bad {l}",
        l = f.live.display()
    ));
    cfg.max_verify_runs = max_verify_runs;
    f.driver = HaproxyDriver::new(cfg, emitter.clone(), Arc::new(HaproxyStatus::new("t")));
    (f, emitter)
}

fn request(ids: &[(&str, &str)]) -> EmitRequest {
    let services = ids
        .iter()
        .map(|(id, ip)| sidecar_catalog::Service {
            id: id.to_string(),
            name: "web".into(),
            hostname: "h1".into(),
            ports: vec![sidecar_catalog::Port {
                kind: sidecar_catalog::PortKind::Tcp,
                port: 8080,
                service_port: 10000,
                ip: ip.to_string(),
            }],
            status: sidecar_catalog::Status::Alive,
            ..Default::default()
        })
        .collect();
    EmitRequest {
        services,
        hostname: "h1".into(),
        cluster_name: "c".into(),
        ..EmitRequest::default()
    }
}

#[tokio::test]
async fn invalid_and_refused_instances_are_quarantined_and_the_rest_applied() {
    let (mut f, _) = id_fixture(32);
    let mut ids: Vec<(String, &str)> = (0..40).map(|i| (format!("ok{i}"), "10.0.0.1")).collect();
    ids.push(("bad1".into(), "10.0.0.2"));
    ids.push(("unresolvable".into(), "nonexistent.invalid"));
    ids.insert(7, ("bad2".into(), "10.0.0.3"));
    let req: Vec<(&str, &str)> = ids.iter().map(|(i, ip)| (i.as_str(), *ip)).collect();
    assert_eq!(f.driver.deliver_request(request(&req)).await, Applied::Done);

    let live = f.live();
    assert!(
        live.contains("server ok0\n") && live.contains("server ok39\n"),
        "{live}"
    );
    assert!(
        !live.contains("bad") && !live.contains("unresolvable"),
        "{live}"
    );
    assert!(f.driver.status.state().last_error.is_none());
    let q = f.driver.status.quarantined();
    let kinds: Vec<(&str, Kind)> = q.iter().map(|q| (q.id.as_str(), q.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("bad1", Kind::Rejected),
            ("bad2", Kind::Rejected),
            ("unresolvable", Kind::Invalid)
        ]
    );
    assert!(q[2].reason.contains("not a literal IP"), "{}", q[2].reason);
    let status = f.driver.status.clone();
    let c = &status.counters;
    let runs = c.bisect_verify_runs.load(Ordering::Relaxed);
    assert!(
        runs <= 2 * 6 * 2 + 1,
        "two culprits among 42: {runs} checks"
    );
    assert_eq!(c.verify_failures.load(Ordering::Relaxed), 1);

    // Unchanged: the rejected stay out without another search; a later good instance
    // flows in.
    let mut more = req.clone();
    more.push(("late", "10.0.0.9"));
    f.driver.deliver_request(request(&more)).await;
    assert!(f.live().contains("server late\n"));
    assert_eq!(c.bisections.load(Ordering::Relaxed), 1);
    assert_eq!(f.driver.status.quarantined().len(), 3);

    // Gone: out of quarantine.
    f.driver
        .deliver_request(request(&[("ok0", "10.0.0.1")]))
        .await;
    assert!(f.driver.status.quarantined().is_empty());
    assert_eq!(f.live(), "VALID\nserver ok0\n");
}

#[tokio::test]
async fn a_broken_template_blames_nobody() {
    let (mut f, emitter) = id_fixture(32);
    f.driver
        .deliver_request(request(&[("a", "10.0.0.1")]))
        .await;
    assert_eq!(f.live(), "VALID\nserver a\n");
    *emitter.0.lock() = Some("broken\n".into());
    f.driver
        .deliver_request(request(&[("a", "10.0.0.1"), ("b", "10.0.0.2")]))
        .await;
    assert_eq!(f.live(), "VALID\nserver a\n", "last good config kept");
    assert_eq!(
        f.driver.status.state().last_error.expect("error").stage,
        "verify"
    );
    assert!(f.driver.status.quarantined().is_empty());
    assert_eq!(
        f.driver
            .status
            .counters
            .bisect_verify_runs
            .load(Ordering::Relaxed),
        1,
        "the empty set failed: search over"
    );
}

#[tokio::test]
async fn budget_holds_back_the_unchecked_and_retries() {
    let (mut f, _) = id_fixture(3);
    let ids = [
        ("bad1", "10.0.0.1"),
        ("bad2", "10.0.0.1"),
        ("bad3", "10.0.0.1"),
        ("bad4", "10.0.0.1"),
        ("ok", "10.0.0.1"),
    ];
    let applied = f.driver.deliver_request(request(&ids)).await;
    assert!(matches!(applied, Applied::Deferred(_)), "{applied:?}");
    let held = f
        .driver
        .status
        .quarantined()
        .iter()
        .filter(|q| q.kind == Kind::HeldBack)
        .count();
    assert!(held > 0);
    // Each retry makes progress; the good instance gets in, the bad ones stay out.
    for _ in 0..10 {
        if f.driver.deliver_request(request(&ids)).await == Applied::Done {
            break;
        }
    }
    assert_eq!(f.live(), "VALID\nserver ok\n");
    let q = f.driver.status.quarantined();
    assert_eq!(q.len(), 4);
    assert!(q.iter().all(|q| q.kind == Kind::Rejected));
    let scraped = crate::metrics::scrape(|r| {
        let status = Arc::new(crate::proxy::ProxyStatus::default());
        status.set_haproxy(f.driver.status.clone());
        status.register_metrics(r)
    });
    crate::metrics::assert_lines(
        &scraped,
        &[
            "sidecar_haproxy_quarantined_instances 4",
            "sidecar_haproxy_quarantines_total{reason=\"rejected\"} 4",
        ],
    );
}
