//! Helpers shared by the simulator story tests.
#![allow(dead_code)] // each test file uses its own subset

use bytes::Bytes;
use consensus_core::NodeId;
use harness::protocol::ZAB;
use harness::{Cluster, SimConfig};
use std::time::Duration;

/// A fresh simulated ZAB cluster of `nodes` with this seed.
pub fn zab(nodes: usize, seed: u64) -> Cluster {
    Cluster::new(
        ZAB,
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

/// Proposes `n` commands named `{tag}-{i}` at whoever leads, 2 ms apart, retrying refusals.
pub fn propose_all(c: &mut Cluster, tag: &str, n: usize) {
    let mut i = 0;
    while i < n {
        let l = leader(c);
        if c.propose(l, Bytes::from(format!("{tag}-{i}"))).is_ok() {
            i += 1;
        }
        c.run_for(Duration::from_millis(2));
    }
}
