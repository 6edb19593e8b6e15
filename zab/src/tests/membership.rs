//! Dynamic reconfiguration and observers, on the in-memory driver.

use super::*;
use consensus_core::{ChangeError, ConfChange, Membership, Role};

/// Servers 1..=3 vote; servers 4..=`total` run but are not members yet.
fn ensemble(total: u64) -> Direct<ZabReplica> {
    let start = Membership::of_voters(&[1, 2, 3]);
    let servers = (1..=total)
        .map(|id| {
            ZabReplica::with_membership(
                id,
                start.clone(),
                Config::default(),
                5,
                Recovered::default(),
                Duration::ZERO,
            )
        })
        .collect();
    Direct::new(servers)
}

fn reconfig(z: &mut Direct<ZabReplica>, changes: &[ConfChange]) {
    let leader = z.leader().expect("a leader");
    let now = z.now();
    z.node_mut(leader)
        .change_membership(now, changes)
        .expect("accepted");
    z.run_for(ms(1500));
}

fn committed_voters(z: &Direct<ZabReplica>, id: NodeId) -> Vec<NodeId> {
    z.node(id).membership().unwrap().voters
}

/// Whether the leader sends `p` PROPOSALs (a voter) rather than INFORMs (an observer).
fn gets_proposals(z: &Direct<ZabReplica>, leader: NodeId, p: NodeId) -> bool {
    match &z.node(leader).role {
        ZabRole::Leading(l) => l.handlers[&p].proposed_from.is_some(),
        _ => panic!("{leader} does not lead"),
    }
}

/// Proposals a follower logged and waits to see committed.
fn awaiting_commit(z: &Direct<ZabReplica>, id: NodeId) -> usize {
    match &z.node(id).role {
        ZabRole::Following(f) => f.pending.len(),
        _ => panic!("{id} does not follow"),
    }
}

#[test]
fn an_observer_syncs_then_gets_inform_and_never_acks() {
    let mut z = ensemble(4);
    let leader = z.elect(ms(5000)).unwrap();
    z.run_for(ms(300));
    z.commit(3, 3, &Bytes::from_static(b"x"));
    reconfig(&mut z, &[ConfChange::learner(4)]);
    assert_eq!(
        z.node(4).status().role,
        Role::Follower,
        "following as an observer"
    );
    assert_eq!(z.node(4).status().leader, Some(leader));
    assert!(z.node(4).membership().unwrap().is_learner(4));
    // A new transaction reaches the observer as INFORM, after the commit.
    let now = z.now();
    let pos = z
        .node_mut(leader)
        .propose(now, Bytes::from_static(b"y"))
        .unwrap();
    assert!(!gets_proposals(&z, leader, 4));
    z.pump();
    assert_eq!(
        awaiting_commit(&z, 4),
        0,
        "nothing logged ahead of its commit"
    );
    assert_eq!(z.node(4).status().commit, pos);
    assert_eq!(z.node(4).log().last_position(), pos);
    assert_eq!(committed_voters(&z, leader), vec![1, 2, 3]);
    // Its ACKs would not count anyway: the quorum is still 2 of the three voters.
    assert!(!z.node(leader).quorum.is_reached([leader, 4]));
}

#[test]
fn a_proposed_configuration_needs_both_majorities_until_it_commits() {
    let mut z = ensemble(5);
    let leader = z.elect(ms(5000)).unwrap();
    z.run_for(ms(300));
    let now = z.now();
    z.node_mut(leader)
        .change_membership(now, &[ConfChange::voter(4), ConfChange::voter(5)])
        .unwrap();
    assert_eq!(
        z.node_mut(leader)
            .change_membership(now, &[ConfChange::voter(4)]),
        Err(ProposeError::Membership(ChangeError::InProgress(
            z.node(leader).log().last_position()
        )))
    );
    // Until it commits, 3 of 1..=3 and 3 of 1..=5: the leader plus 4 and 5 is not enough.
    let q = z.node(leader).quorum.clone();
    assert!(!q.is_reached([leader, 4, 5]));
    z.run_for(ms(1500));
    for id in 1..=5 {
        assert_eq!(committed_voters(&z, id), vec![1, 2, 3, 4, 5], "server {id}");
    }
    z.commit(3, 3, &Bytes::from_static(b"x"));
}

#[test]
fn an_observer_promoted_to_voter_acks_from_then_on() {
    let mut z = ensemble(4);
    z.elect(ms(5000)).unwrap();
    z.run_for(ms(300));
    reconfig(&mut z, &[ConfChange::learner(4)]);
    reconfig(&mut z, &[ConfChange::voter(4)]);
    let leader = z.leader().unwrap();
    assert_eq!(committed_voters(&z, leader), vec![1, 2, 3, 4]);
    assert!(gets_proposals(&z, leader, 4));
    z.commit(3, 3, &Bytes::from_static(b"x"));
    let last = z.node(leader).log().last_position();
    assert_eq!(z.node(4).log().last_position(), last);
    assert_eq!(z.node(4).status().commit, last);
}

#[test]
fn a_leader_outside_the_new_configuration_steps_down_and_the_rest_elect() {
    let mut z = ensemble(3);
    let old = z.elect(ms(5000)).unwrap();
    z.run_for(ms(300));
    z.commit(2, 2, &Bytes::from_static(b"x"));
    let now = z.now();
    z.node_mut(old)
        .change_membership(now, &[ConfChange::Remove { id: old }])
        .unwrap();
    z.run_for(ms(3000));
    let new = z.leader().expect("the remaining two elect a leader");
    assert_ne!(new, old);
    assert_eq!(committed_voters(&z, new).len(), 2);
    assert_ne!(z.node(old).status().role, Role::Leader);
    z.commit(2, 2, &Bytes::from_static(b"y"));
}
