//! Membership changes (the thesis, chapter 4), on the in-memory driver.

use super::*;
use crate::RaftRole;
use consensus_core::{ChangeError, ConfChange, Direct, Membership, ProposeError, Role};

/// Nodes 1..=3 vote; nodes 4..=`total` run but are not members yet.
fn cluster(total: u64, config: Config) -> Direct<RaftReplica> {
    let start = Membership::of_voters(&[1, 2, 3]);
    let nodes = (1..=total)
        .map(|id| {
            RaftReplica::with_membership(
                id,
                start.clone(),
                config.clone(),
                11,
                Recovered::default(),
                Duration::ZERO,
            )
        })
        .collect();
    Direct::new(nodes)
}

/// Asks the leader for `changes` and runs until it reports them done.
fn change(c: &mut Direct<RaftReplica>, changes: &[ConfChange]) -> Position {
    let leader = c.leader().expect("a leader");
    let now = c.now();
    let pos = c
        .node_mut(leader)
        .change_membership(now, changes)
        .expect("accepted");
    c.run_for(ms(120));
    pos
}

fn voters_of(c: &Direct<RaftReplica>, id: NodeId) -> Vec<NodeId> {
    c.node(id).membership().unwrap().voters
}

#[test]
fn a_learner_catches_up_without_voting_then_is_promoted() {
    let mut c = cluster(4, Config::default());
    let leader = c.elect(ms(1000)).unwrap();
    c.run_for(ms(60));
    c.commit(5, 5, &Bytes::from_static(b"x"));
    change(&mut c, &[ConfChange::learner(4)]);
    let m = c.node(4).membership().unwrap();
    assert!(
        m.is_learner(4),
        "node 4 learned its own role from the log: {m:?}"
    );
    assert_eq!(
        c.node(4).log().last_index(),
        c.node(leader).log().last_index()
    );
    // A learner never campaigns, however long it waits.
    c.run_for(ms(2000));
    assert_eq!(c.node(4).raft_role(), RaftRole::Follower);
    assert_eq!(c.node(4).hard_state().voted_for, None);
    // Promoted: four voters, three make a majority.
    change(&mut c, &[ConfChange::voter(4)]);
    for id in 1..=4 {
        assert_eq!(voters_of(&c, id), vec![1, 2, 3, 4], "node {id}");
    }
    assert_eq!(c.node(c.leader().unwrap()).quorum(), 3);
}

#[test]
fn a_new_leader_changes_nothing_before_it_commits_in_its_term() {
    let mut l = elected_leader(3, plain());
    let now = l.now;
    // The no-op of its term is not committed yet (nobody answered).
    assert_eq!(
        l.change_membership(now, &[ConfChange::Remove { id: 3 }]),
        Err(ProposeError::Membership(ChangeError::NotYetCommittedInTerm))
    );
    // Without the fix, the change goes in at once.
    let mut unsafe_l = elected_leader(
        3,
        Config {
            change_after_own_term_commit: false,
            ..plain()
        },
    );
    let now = unsafe_l.now;
    assert!(unsafe_l
        .change_membership(now, &[ConfChange::Remove { id: 3 }])
        .is_ok());
}

#[test]
fn one_change_at_a_time_and_the_configuration_counts_once_appended() {
    let mut l = elected_leader(3, plain());
    let now = l.now;
    l.persisted(now, Position::new(1, 1));
    l.receive(now, 2, ok(1, 1));
    assert_eq!(l.commit_index(), 1);
    let pos = l.change_membership(now, &[ConfChange::voter(4)]).unwrap();
    // In force before it commits: the leader now replicates to node 4, and needs 3 of 4.
    assert!(l.progress(4).is_some());
    assert_eq!(l.quorum(), 3);
    assert_eq!(
        l.change_membership(now, &[ConfChange::voter(5)]),
        Err(ProposeError::Membership(ChangeError::InProgress(pos)))
    );
    durable(&mut l);
    l.receive(now, 2, ok(1, pos.seq));
    assert_eq!(l.commit_index(), 1, "2 of 4 is not a majority");
    l.receive(now, 4, ok(1, pos.seq));
    assert_eq!(l.commit_index(), pos.seq);
    assert!(l.change_membership(now, &[ConfChange::voter(5)]).is_ok());
}

#[test]
fn replacing_two_voters_goes_through_a_joint_configuration_the_leader_leaves() {
    let mut c = cluster(5, Config::default());
    c.elect(ms(1000)).unwrap();
    c.run_for(ms(60));
    // Learners first, so the new voters hold the log when they start to count.
    change(&mut c, &[ConfChange::learner(4), ConfChange::learner(5)]);
    let leader = c.leader().unwrap();
    let gone: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&i| i != leader).collect();
    let now = c.now();
    let pos = c
        .node_mut(leader)
        .change_membership(
            now,
            &[
                ConfChange::voter(4),
                ConfChange::voter(5),
                ConfChange::Remove { id: gone[0] },
                ConfChange::Remove { id: gone[1] },
            ],
        )
        .unwrap();
    let joint = c.node(leader).membership().unwrap();
    assert!(joint.is_joint(), "{joint:?}");
    c.run_for(ms(120));
    let m = c.node(leader).membership().unwrap();
    assert!(
        !m.is_joint(),
        "left on its own once the joint entry committed"
    );
    let mut want = vec![leader, 4, 5];
    want.sort_unstable();
    assert_eq!(m.voters, want);
    assert!(c.node(leader).commit_index() > pos.seq);
    c.commit(3, 3, &Bytes::from_static(b"y"));
}

#[test]
fn a_leader_that_removes_itself_hands_over_and_steps_down() {
    let mut c = cluster(3, Config::default());
    let old = c.elect(ms(1000)).unwrap();
    c.run_for(ms(60));
    c.commit(2, 2, &Bytes::from_static(b"x"));
    let now = c.now();
    c.node_mut(old)
        .change_membership(now, &[ConfChange::Remove { id: old }])
        .unwrap();
    // TimeoutNow to a caught-up voter: a new leader within a few milliseconds, not an
    // election timeout.
    c.run_for(ms(5));
    let new = c.leader().expect("a new leader at once");
    assert_ne!(new, old);
    assert_eq!(c.node(old).status().role, Role::Follower);
    c.commit(2, 2, &Bytes::from_static(b"y"));
    // The removed node never campaigns again.
    let term = c.node(old).hard_state().current_term;
    c.run_for(ms(2000));
    assert_eq!(c.node(old).hard_state().current_term, term);
    assert_eq!(voters_of(&c, new).len(), 2);
}

#[test]
fn a_learner_is_promoted_only_once_it_caught_up() {
    let mut l = elected_leader(3, plain());
    let now = l.now;
    l.persisted(now, Position::new(1, 1));
    l.receive(now, 2, ok(1, 1));
    let pos = l.change_membership(now, &[ConfChange::learner(4)]).unwrap();
    durable(&mut l);
    l.receive(now, 2, ok(1, pos.seq));
    assert_eq!(
        l.commit_index(),
        pos.seq,
        "learners do not count: 2 of 3 voters"
    );
    assert!(matches!(
        l.change_membership(now, &[ConfChange::voter(4)]),
        Err(ProposeError::Membership(ChangeError::NotCaughtUp {
            id: 4,
            ..
        }))
    ));
    l.receive(now, 4, ok(1, pos.seq));
    assert!(l.change_membership(now, &[ConfChange::voter(4)]).is_ok());
}
