//! Driver behaviour with stand-in verify/reload commands (the real binary is exercised
//! by the end-to-end tests).

use super::*;
use crate::config::Env;
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
