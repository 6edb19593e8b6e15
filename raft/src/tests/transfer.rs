//! Leadership transfer (dissertation 3.10).

use super::*;
use crate::{Config, RaftRole};
use consensus_core::ProposeError;

fn timeout_now_to(ready: &Ready<Message, HardState>) -> Vec<NodeId> {
    sent(ready)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::TimeoutNow { .. }))
        .map(|(to, _)| to)
        .collect()
}

fn checked() -> Config {
    Config {
        check_quorum: true,
        ..plain()
    }
}

#[test]
fn a_caught_up_target_gets_timeout_now_at_once_and_proposals_wait() {
    let mut l = elected_leader(3, checked());
    let now = l.now;
    // Node 2 has the leader's no-op (index 1).
    l.receive(now, 2, ok(1, 1));
    durable(&mut l);
    l.transfer_leadership(now, 2).unwrap();
    assert_eq!(timeout_now_to(&l.take_ready()), vec![2]);
    assert_eq!(
        l.propose(now, Bytes::from_static(b"x")),
        Err(ProposeError::NotLeader { leader: None }),
        "no new entries while handing over"
    );
}

#[test]
fn a_lagging_target_is_brought_up_to_date_first() {
    let mut l = elected_leader(3, checked());
    let now = l.now;
    l.propose(now, Bytes::from_static(b"a")).unwrap();
    durable(&mut l);
    // Node 2 has only the no-op: TimeoutNow waits until it holds index 2.
    // (its answer made the leader send it index 2 already).
    l.receive(now, 2, ok(1, 1));
    l.take_ready();
    l.transfer_leadership(now, 2).unwrap();
    assert!(timeout_now_to(&l.take_ready()).is_empty());
    l.receive(now, 2, ok(1, 2));
    assert_eq!(timeout_now_to(&l.take_ready()), vec![2]);
}

#[test]
fn a_transfer_that_does_not_end_lapses_after_an_election_timeout() {
    let mut l = elected_leader(3, plain());
    let now = l.now;
    l.transfer_leadership(now, 3).unwrap();
    l.take_ready();
    assert!(l.propose(now, Bytes::from_static(b"x")).is_err());
    l.tick(now + l.config.election_timeout_min);
    assert_eq!(l.raft_role(), RaftRole::Leader);
    assert!(
        l.propose(
            now + l.config.election_timeout_min,
            Bytes::from_static(b"x")
        )
        .is_ok(),
        "proposals resume once the attempt lapsed"
    );
}

#[test]
fn only_a_leader_transfers_and_only_to_a_voter() {
    let mut f = node(2, 3, plain());
    assert!(matches!(
        f.transfer_leadership(ms(1), 3),
        Err(ProposeError::NotLeader { .. })
    ));
    let mut l = elected_leader(3, plain());
    let now = l.now;
    assert_eq!(
        l.transfer_leadership(now, 9),
        Err(ProposeError::NotVoter(9))
    );
    assert_eq!(
        l.transfer_leadership(now, 1),
        Ok(()),
        "to itself: nothing to do"
    );
    assert!(l.propose(now, Bytes::from_static(b"x")).is_ok());
}

#[test]
fn the_target_campaigns_at_once_and_voters_grant_despite_the_lease() {
    // The target, a follower of leader 1 in term 1, with check-quorum and pre-vote on.
    let config = Config {
        check_quorum: true,
        pre_vote: true,
        ..plain()
    };
    let mut t = node(2, 3, config.clone());
    t.receive(ms(10), 1, append(1, 0, 0, vec![], 0));
    t.take_ready();
    t.receive(ms(11), 1, Message::TimeoutNow { term: 1 });
    let r = t.take_ready();
    assert_eq!(t.raft_role(), RaftRole::Candidate, "no pre-vote round");
    assert_eq!(t.hard_state().current_term, 2);
    let asks: Vec<NodeId> = sent(&r)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::TransferVote { term: 2, .. }))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(asks, vec![1, 3]);

    // A voter that still hears the leader ignores a plain RequestVote but grants this one.
    let mut v = node(3, 3, config);
    v.receive(ms(10), 1, append(1, 0, 0, vec![], 0));
    v.take_ready();
    v.receive(ms(12), 2, ask(2, false));
    assert!(sent(&v.take_ready()).is_empty(), "the lease holds");
    v.receive(
        ms(12),
        2,
        Message::TransferVote {
            term: 2,
            last_log_index: 0,
            last_log_term: 0,
        },
    );
    assert!(sent(&v.take_ready())
        .iter()
        .any(|(to, m)| *to == 2 && *m == vote(2, true, false)));
    // The target wins with that vote.
    t.receive(ms(13), 3, vote(2, true, false));
    assert_eq!(t.raft_role(), RaftRole::Leader);
}

#[test]
fn timeout_now_from_anyone_but_the_leader_is_ignored() {
    let mut t = node(2, 3, plain());
    t.receive(ms(10), 1, append(1, 0, 0, vec![], 0));
    t.take_ready();
    t.receive(ms(11), 3, Message::TimeoutNow { term: 1 });
    assert_eq!(t.raft_role(), RaftRole::Follower);
    assert_eq!(t.hard_state().current_term, 1);
}

#[test]
fn a_voter_with_a_more_up_to_date_log_refuses_a_transfer_vote() {
    // Voter 3 holds entries (1, 1) and (1, 2); a target that holds only (1, 1) asks.
    let mut v = node_with(3, 3, checked(), 1, &[1, 1]);
    v.receive(
        ms(12),
        2,
        Message::TransferVote {
            term: 2,
            last_log_index: 1,
            last_log_term: 1,
        },
    );
    let r = v.take_ready();
    assert!(
        sent(&r)
            .iter()
            .any(|(to, m)| *to == 2 && *m == vote(2, false, false)),
        "{:?}",
        sent(&r)
    );
    assert_eq!(v.hard_state().voted_for, None);
}
