//! The core is deterministic: the simulator replays a campaign seed by feeding cores the
//! same seeds and inputs, so the same seed and inputs must give the same outputs.

use super::support::*;
use crate::swim::SwimConfig;

/// Several probes due in the same tick (four confirmation probes started together).
fn retries_of_four_probes() -> Vec<(u32, Vec<u8>)> {
    let cfg = SwimConfig {
        active_probers: 100,
        ..SwimConfig::default()
    };
    let mut n = Node::with_config(cfg, &[2, 3, 4, 5, 6, 7, 8]);
    n.gossip(
        8,
        &[
            suspect(2, 0, 8),
            suspect(3, 0, 8),
            suspect(4, 0, 8),
            suspect(5, 0, 8),
        ],
    );
    n.take();
    n.advance(micros(n.cfg().probe_timeout));
    n.take()
        .0
        .into_iter()
        .filter_map(|(_, o)| match o {
            crate::swim::Output::Datagram { to, payload } => Some((to, payload)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_same_seed_and_inputs_give_the_same_outputs() {
    for _ in 0..8 {
        assert_eq!(retries_of_four_probes(), retries_of_four_probes());
    }
}
