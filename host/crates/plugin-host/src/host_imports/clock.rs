//! `clock.now`: wall-clock time.

use super::bindings::sidecar::plugin::clock;
use super::types::Timestamp;
use crate::state::HostState;

impl clock::Host for HostState {
    fn now(&mut self) -> Timestamp {
        let (seconds, nanoseconds) = sidecar_catalog::Timestamp::now().to_parts();
        Timestamp {
            seconds,
            nanoseconds,
        }
    }
}
