//! Clusters for benchmarks: cores in one thread on the in-memory driver
//! ([`consensus_core::Direct`]: messages handed over directly, persistence instant), so what is
//! measured is the protocol's own cost per commit.

pub use consensus_core::Direct;
use consensus_core::{NodeId, Recovered};
use raft::RaftReplica;
use std::time::Duration;

/// A ZAB ensemble of `n` servers with default settings, already led.
pub fn zab(n: usize) -> Direct<zab::ZabReplica> {
    let voters: Vec<NodeId> = (1..=n as NodeId).collect();
    let nodes = voters.iter().map(|&id| {
        zab::ZabReplica::new(
            id,
            &voters,
            zab::Config::default(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    });
    led(Direct::new(nodes.collect()))
}

/// A Raft cluster of `n` nodes that serves lease reads, already led.
pub fn raft_with_leases(n: usize) -> Direct<RaftReplica> {
    let voters: Vec<NodeId> = (1..=n as NodeId).collect();
    let config = raft::Config::serving_leases();
    let nodes = voters.iter().map(|&id| {
        RaftReplica::new(
            id,
            &voters,
            config.clone(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    });
    let mut d = led(Direct::new(nodes.collect()));
    // Past the start-up pause of leases, with the leader's no-op committed.
    d.run_for(Duration::from_millis(200));
    d
}

/// The cluster once a leader is elected.
fn led<R: consensus_core::Replica>(mut d: Direct<R>) -> Direct<R> {
    assert!(
        d.elect(Duration::from_secs(10)).is_some(),
        "no leader elected"
    );
    d
}

/// A Raft cluster of `n` nodes with default settings, already led.
pub fn raft(n: usize) -> Direct<RaftReplica> {
    let voters: Vec<NodeId> = (1..=n as NodeId).collect();
    let nodes = voters.iter().map(|&id| {
        RaftReplica::new(
            id,
            &voters,
            raft::Config::default(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    });
    led(Direct::new(nodes.collect()))
}

/// Virtual time from a leader's crash to the next leader, in a 5-node simulated cluster
/// with default settings (the trial of `consensus-lab figure16`).
pub fn election_after_crash(kind: harness::Protocol, seed: u64) -> Duration {
    harness::figure16::election_after_crash(kind, &Default::default(), seed)
        .expect("a new leader within the trial limit")
}
