//! `clock.now`: wall-clock time.

use super::bindings::sidecar::plugin::clock;
use super::types::Timestamp;
use crate::plugins::state::HostState;

impl clock::Host for HostState {
    fn now(&mut self) -> Timestamp {
        let (seconds, nanoseconds) = crate::catalog::Timestamp::now().to_parts();
        Timestamp {
            seconds,
            nanoseconds,
        }
    }
}
