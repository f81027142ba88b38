//! Change events: what listeners, watchers and proxy drivers are told.

use super::model::{Service, ServicesState, Status};
use super::time::Timestamp;
use serde::Serialize;

/// A status change or a new record (`ChangeEvent` in Sidecar).
///
/// Fired exactly when a record is first stored, or stored with a different status.
/// Re-stamps that change nothing visible (refreshes) fire none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeEvent {
    #[serde(rename = "Service")]
    pub service: Service,
    /// The stored status before the change; UNKNOWN for a new record.
    #[serde(rename = "PreviousStatus")]
    pub previous_status: Status,
    /// The catalog's `LastChanged` right after this change.
    #[serde(rename = "Time")]
    pub time: Timestamp,
}

/// The body Sidecar POSTs to listeners (`StateChangedEvent`).
#[derive(Clone, Debug, Serialize)]
pub struct StateChangedEvent<'a> {
    #[serde(rename = "State")]
    pub state: &'a ServicesState,
    #[serde(rename = "ChangeEvent")]
    pub change_event: &'a ChangeEvent,
}
