//! `sidecar-catalog`: Sidecar's last-writer-wins record of every service in the cluster.
//!
//! Pure data and rules. No sockets, no clocks, no logging of its own: callers hand in
//! the time and route what an operation returns ([`Applied`]: records to disseminate,
//! change events to publish). See `docs/catalog.md` for every place where we differ
//! from Sidecar and why.

mod clock;
mod digest;
mod duration;
mod events;
mod expiry;
pub mod limits;
mod local;
mod merge;
mod model;
mod store;
mod time;

pub use clock::{Mono, Now, OriginClock};
pub use digest::{Fingerprint, record_hash};
pub use duration::parse_go_duration;
pub use events::{ChangeEvent, StateChangedEvent};
pub use limits::{RecordError, check_record};
pub use local::DrainError;
pub use model::{Port, PortKind, Server, Service, ServicesState, Status};
pub use store::{Applied, Catalog, Lifespans, Record};
pub use time::{TimeParseError, Timestamp};
