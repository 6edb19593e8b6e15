//! Reads: ZooKeeper's `sync` (the read index of a ZAB server).

use super::*;
use consensus_core::{ReadLevel, ReadState};

#[test]
fn a_sync_at_a_follower_waits_for_the_leaders_last_proposal() {
    let (mut d, l) = led_ensemble(Config::default());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    // A proposal the follower has not seen committed yet.
    let pos = d
        .node_mut(l)
        .propose(now, Bytes::from_static(b"x"))
        .unwrap();
    d.node_mut(f).read_index(now, 7, ReadLevel::Index).unwrap();
    d.pump();
    assert_eq!(d.take_reads(), vec![(f, ReadState::at(7, pos))]);
    assert!(d.node(f).last_committed().position() >= pos);
}

#[test]
fn a_sync_right_after_the_election_waits_for_the_synchronized_history_only() {
    let (mut d, l) = led_ensemble(Config::default());
    let now = d.now();
    d.node_mut(l).read_index(now, 1, ReadLevel::Lease).unwrap();
    d.pump();
    let committed = d.node(l).last_committed().position();
    assert_eq!(
        d.take_reads(),
        vec![(l, ReadState::at(1, committed))],
        "not the epoch marker, which no entry ever reaches"
    );
}

#[test]
fn a_follower_that_leaves_its_leader_fails_its_pending_syncs() {
    let (mut d, l) = led_ensemble(Config::default());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    d.node_mut(f).read_index(now, 3, ReadLevel::Index).unwrap();
    // The SYNC is lost, and the leader falls silent for longer than syncLimit.
    let _ = d.node_mut(f).take_ready();
    d.node_mut(f).tick(now + ms(1000));
    assert_eq!(
        d.node_mut(f).take_ready().reads,
        vec![ReadState::refused(3, None)]
    );
}
