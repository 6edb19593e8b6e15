//! The benchmark driver commits what it is asked to, so the numbers measure real commits.

use benches::Direct;
use bytes::Bytes;
use consensus_core::{NodeId, Recovered};
use raft::RaftReplica;
use std::time::Duration;

#[test]
fn direct_cluster_commits_exactly_what_was_asked() {
    let voters: Vec<NodeId> = vec![1, 2, 3];
    let mut d = Direct::new(3, |id| {
        RaftReplica::new(
            id,
            &voters,
            raft::Config::default(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    });
    d.commit(1000, 64, &Bytes::from_static(b"x"));
    assert_eq!(d.committed, 1000);
    d.commit(10, 1, &Bytes::from_static(b"y"));
    assert_eq!(d.committed, 1010);
}
