//! The per-check state machine. Sidecar: no result yet = UNKNOWN, one failure =
//! UNHEALTHY, one pass = ALIVE. `rise`/`fall` (default 1/1) optionally demand several
//! consecutive results before a flip; the first result always counts at once.

use sidecar_catalog::Status;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub status: Status,
    passes: u32,
    failures: u32,
    pub message: String,
}

impl Default for CheckState {
    fn default() -> Self {
        CheckState {
            status: Status::Unknown,
            passes: 0,
            failures: 0,
            message: String::new(),
        }
    }
}

impl CheckState {
    /// No result counts (the check could not be resolved): UNKNOWN, saying why.
    pub fn unknown(message: String) -> CheckState {
        CheckState {
            message,
            ..CheckState::default()
        }
    }

    /// Applies one result; returns true when the status changed.
    pub fn record(&mut self, healthy: bool, message: String, rise: u32, fall: u32) -> bool {
        self.message = message;
        let before = self.status;
        if healthy {
            self.passes += 1;
            self.failures = 0;
            if self.status == Status::Unknown || self.passes >= rise {
                self.status = Status::Alive;
            }
        } else {
            self.failures += 1;
            self.passes = 0;
            if self.status == Status::Unknown || self.failures >= fall {
                self.status = Status::Unhealthy;
            }
        }
        before != self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_defaults_flip_on_every_result() {
        let mut s = CheckState::default();
        assert_eq!(s.status, Status::Unknown);
        assert!(s.record(true, String::new(), 1, 1));
        assert_eq!(s.status, Status::Alive);
        assert!(s.record(false, "down".into(), 1, 1));
        assert_eq!(s.status, Status::Unhealthy);
        assert!(!s.record(false, String::new(), 1, 1));
        assert!(s.record(true, String::new(), 1, 1));
        assert_eq!(s.status, Status::Alive);
    }

    #[test]
    fn thresholds_delay_flips() {
        let mut s = CheckState::default();
        s.record(true, String::new(), 2, 3);
        assert_eq!(s.status, Status::Alive, "first result counts at once");
        s.record(false, String::new(), 2, 3);
        s.record(false, String::new(), 2, 3);
        assert_eq!(s.status, Status::Alive);
        s.record(false, String::new(), 2, 3);
        assert_eq!(s.status, Status::Unhealthy);
        s.record(true, String::new(), 2, 3);
        assert_eq!(s.status, Status::Unhealthy);
        s.record(true, String::new(), 2, 3);
        assert_eq!(s.status, Status::Alive);
    }
}
