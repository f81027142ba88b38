//! Unit tests of the SWIM core the way foca tests its own: one rule per test, against a
//! single core fed encoded datagrams and the time by hand (no sockets, no simulator),
//! asserting on what it sends and on its member table.

mod determinism;
mod gossip;
mod lifeguard;
mod limits;
mod membership;
mod probe;
mod relay;
mod support;
mod suspicion;
mod sync;
mod tree;
