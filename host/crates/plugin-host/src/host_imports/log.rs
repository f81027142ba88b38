//! `log.log` / `log.log-fields`: a plugin's own log lines, tagged `plugin = <name>`.

use super::bindings::sidecar::plugin::log::{self, Level};
use crate::state::HostState;

/// Longest message kept; the rest is cut so one call cannot flood the log.
const MAX_MESSAGE: usize = 8192;

/// Lines kept per call; the rest are counted and reported in one line when the call
/// ends (an emitter warning about each of thousands of services must not bury the log).
const MAX_LINES_PER_CALL: u32 = 100;

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self.admit_line() {
            emit(&self.plugin.name, level, &message, "");
        }
    }

    fn log_fields(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.admit_line() {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            emit(&self.plugin.name, level, &message, &fields.join(" "));
        }
    }
}

impl HostState {
    fn admit_line(&mut self) -> bool {
        self.log_lines = self.log_lines.saturating_add(1);
        self.log_lines <= MAX_LINES_PER_CALL
    }
}

/// At the end of a call: says how many of its log lines were dropped, if any.
pub(crate) fn report_dropped(plugin: &str, lines: u32) {
    if lines > MAX_LINES_PER_CALL {
        let dropped = lines - MAX_LINES_PER_CALL;
        tracing::warn!(
            plugin,
            "{dropped} more log lines from this call dropped (at most {MAX_LINES_PER_CALL} per call)"
        );
    }
}

fn emit(plugin: &str, level: Level, message: &str, fields: &str) {
    let message = cut(message);
    if fields.is_empty() {
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        return;
    }
    match level {
        Level::Trace => tracing::trace!(plugin, fields, "{message}"),
        Level::Debug => tracing::debug!(plugin, fields, "{message}"),
        Level::Info => tracing::info!(plugin, fields, "{message}"),
        Level::Warn => tracing::warn!(plugin, fields, "{message}"),
        Level::Error => tracing::error!(plugin, fields, "{message}"),
    }
}

/// At most `MAX_MESSAGE` bytes, cut on a char boundary.
fn cut(s: &str) -> &str {
    &s[..s.floor_char_boundary(MAX_MESSAGE)]
}
