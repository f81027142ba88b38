//! Names a service after capture group 1 of a regular expression matched against the
//! container's first name, Sidecar's `regex` namer (`SERVICES_NAME_MATCH`).
//!
//! The name is matched *including* Docker's leading slash, as in Sidecar:
//! `^/(.+)(-[0-9a-z]{7,14})$` on `/awesome-svc-1231b1b12323` gives `awesome-svc`.
//!
//! Differences from Sidecar, on purpose:
//! * A pattern without a capture group, or whose group 1 did not participate in the
//!   match, falls back to the image name; Sidecar indexed out of range and crashed.
//! * No match falls back to the image name (as Sidecar).
//! * A missing, empty or invalid `pattern` is rejected by `configure`, so the daemon
//!   reports it at start instead of on the first container.
//! * The syntax is Rust's `regex` crate, which is RE2 syntax like Go's `regexp`. Two
//!   visible differences: `\d`, `\w`, `\s` and `\b` are Unicode-aware here, and Unicode
//!   general categories and scripts (`\pL`, `\p{Greek}`) are not built in (to keep the
//!   plugin small); such a pattern is rejected by `configure` with the reason.

use regex::Regex;
use sidecar_plugin_sdk::Settings;
use sidecar_plugin_sdk::namer::{self, Container, Namer};
use std::cell::RefCell;

thread_local! {
    static PATTERN: RefCell<Option<Regex>> = const { RefCell::new(None) };
}

struct RegexNamer;

impl Namer for RegexNamer {
    fn configure(settings: Vec<(String, String)>) -> Result<(), String> {
        let s = Settings::new(&settings, &["pattern"])?;
        let regex = compile(s.get("pattern"))?;
        PATTERN.with(|p| *p.borrow_mut() = Some(regex));
        Ok(())
    }

    fn name(c: Container) -> Result<String, String> {
        PATTERN.with(|p| match p.borrow().as_ref() {
            Some(regex) => Ok(name_for(regex, &c.name, &c.image)),
            None => Err("not configured: the `pattern` setting is required".to_string()),
        })
    }
}

fn compile(pattern: Option<&str>) -> Result<Regex, String> {
    match pattern {
        None => Err("the `pattern` setting is required (SERVICES_NAME_MATCH)".to_string()),
        Some("") => Err("`pattern` must not be empty".to_string()),
        Some(p) => Regex::new(p).map_err(|e| format!("invalid `pattern` {p:?}: {e}")),
    }
}

/// Capture group 1 of `regex` on `container_name`, else `image`.
fn name_for(regex: &Regex, container_name: &str, image: &str) -> String {
    regex
        .captures(container_name)
        .and_then(|caps| caps.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| image.to_string())
}

namer::export!(RegexNamer);

#[cfg(test)]
mod tests {
    use super::*;

    fn name(pattern: &str, container: &str) -> String {
        let regex = compile(Some(pattern)).expect("valid pattern");
        name_for(&regex, container, "gonitro/awesome-svc:0.1.34")
    }

    #[test]
    fn sidecar_example_and_fallbacks() {
        assert_eq!(
            name(r"^/(.+)(-[0-9a-z]{7,14})$", "/awesome-svc-1231b1b12323"),
            "awesome-svc"
        );
        assert_eq!(
            name("ASDF", "/awesome-svc-1231b1b12323"),
            "gonitro/awesome-svc:0.1.34"
        );
        assert_eq!(
            name("^/awesome", "/awesome-svc"),
            "gonitro/awesome-svc:0.1.34",
            "no group"
        );
        assert_eq!(
            name("^/(x)?awesome", "/awesome-svc"),
            "gonitro/awesome-svc:0.1.34",
            "group 1 unset"
        );
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(compile(None).is_err());
        assert!(compile(Some("")).is_err());
        assert!(
            compile(Some("(unclosed"))
                .expect_err("invalid")
                .contains("invalid `pattern`")
        );
    }
}
