//! Names a service after a container label (default `ServiceName`), falling back to
//! the image name when the label is missing or empty, as Sidecar's `docker_label` namer.

use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::namer::{self, Container, Namer};
use std::cell::RefCell;

const DEFAULT_LABEL: &str = "ServiceName";

thread_local! {
    static LABEL: RefCell<String> = RefCell::new(DEFAULT_LABEL.to_string());
}

struct LabelNamer;

impl Namer for LabelNamer {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&settings, &["label"])?;
        let label = s.map("label", |v| match v.trim() {
            "" => Err("`label` must not be empty".to_string()),
            _ => Ok(v.to_string()),
        })?;
        if let Some(label) = label {
            LABEL.with(|l| *l.borrow_mut() = label);
        }
        Ok(())
    }

    fn name(c: Container) -> Result<String, String> {
        Ok(LABEL.with(|label| name_for(&c, &label.borrow())))
    }
}

fn name_for(c: &Container, label: &str) -> String {
    c.labels
        .iter()
        .find(|(k, v)| k == label && !v.is_empty())
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| c.image.clone())
}

namer::export!(LabelNamer);
