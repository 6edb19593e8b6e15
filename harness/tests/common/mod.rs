//! Helpers shared by the simulator story tests.
#![allow(dead_code)] // each test file uses its own subset

use consensus_core::NodeId;
use harness::{Cluster, ProtocolKind, SimConfig};
use std::time::Duration;

/// A fresh simulated ZAB cluster of `nodes` with this seed.
pub fn zab(nodes: usize, seed: u64) -> Cluster {
    Cluster::new(
        ProtocolKind::Zab,
        SimConfig {
            nodes,
            seed,
            ..SimConfig::default()
        },
    )
}

/// Runs until some node leads (at most 15 s of virtual time) and returns it.
pub fn leader(c: &mut Cluster) -> NodeId {
    assert!(
        c.run_until(Duration::from_secs(15), |c| c.leader().is_some()),
        "no leader"
    );
    c.leader().unwrap()
}
