//! Names a service after a container label (default `ServiceName`), falling back to
//! the image name when the label is missing or empty, as Sidecar's `docker_label` namer.

wit_bindgen::generate!({ world: "namer", path: "../../wit" });

use exports::sidecar::plugin::{lifecycle, naming};
use sidecar::plugin::types::Container;
use std::cell::RefCell;

const DEFAULT_LABEL: &str = "ServiceName";

thread_local! {
    static LABEL: RefCell<String> = RefCell::new(DEFAULT_LABEL.to_string());
}

struct Namer;

impl lifecycle::Guest for Namer {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        for (key, value) in settings {
            match key.as_str() {
                "label" if value.trim().is_empty() => {
                    return Err("`label` must not be empty".into());
                }
                "label" => LABEL.with(|l| *l.borrow_mut() = value),
                other => return Err(format!("unknown setting `{other}` (known: label)")),
            }
        }
        Ok(())
    }
}

impl naming::Guest for Namer {
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

export!(Namer);
