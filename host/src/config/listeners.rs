//! Listener settings: Sidecar's `LISTENERS_URLS`.

use super::env::Env;
use crate::listeners::ListenersConfig;

impl ListenersConfig {
    pub fn load(env: &Env) -> Self {
        ListenersConfig {
            urls: env.list("LISTENERS_URLS", None).unwrap_or_default(),
        }
    }
}
