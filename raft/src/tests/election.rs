use super::*;
use crate::RaftRole;
use consensus_core::Role;

#[test]
fn follower_times_out_within_the_randomized_election_timeout() {
    for id in 1..=20 {
        let n = node(id, 20, plain());
        let d = n.next_deadline();
        assert!(d >= ms(150) && d < ms(300), "deadline {d:?}");
    }
    // Different nodes draw different timeouts.
    let ds: std::collections::BTreeSet<_> = (1..=5)
        .map(|id| node(id, 5, plain()).next_deadline())
        .collect();
    assert!(ds.len() > 1);
}

#[test]
fn candidate_increments_term_votes_for_itself_and_persists_before_asking() {
    let mut n = node(1, 3, plain());
    let r = time_out(&mut n);
    assert_eq!(n.raft_role(), RaftRole::Candidate);
    assert_eq!(
        n.hard_state(),
        HardState {
            current_term: 1,
            voted_for: Some(1)
        }
    );
    // The term and vote are in the same Ready as the requests, so they are durable first.
    assert_eq!(
        hard_states(&r),
        vec![HardState {
            current_term: 1,
            voted_for: Some(1)
        }]
    );
    let msgs = sent(&r);
    assert_eq!(msgs.len(), 2);
    for (_, m) in msgs {
        assert_eq!(m, ask(1, false));
    }
}

#[test]
fn candidate_with_a_majority_of_votes_becomes_leader_and_appends_a_noop() {
    let mut n = node(1, 5, plain());
    time_out(&mut n);
    let grant = vote(1, true, false);
    n.receive(ms(300), 2, grant.clone());
    assert_eq!(
        n.raft_role(),
        RaftRole::Candidate,
        "2 of 5 is not a majority"
    );
    n.receive(ms(300), 2, grant.clone());
    assert_eq!(
        n.raft_role(),
        RaftRole::Candidate,
        "a duplicate vote counts once"
    );
    n.receive(ms(300), 3, grant);
    assert_eq!(n.raft_role(), RaftRole::Leader);
    assert_eq!(n.log().last_index(), 1);
    assert_eq!(
        n.log().get(1).unwrap().payload,
        consensus_core::Payload::Noop
    );
    let r = n.take_ready();
    assert_eq!(
        sent(&r)
            .iter()
            .filter(|(_, m)| matches!(m, Message::AppendEntries { .. }))
            .count(),
        4
    );
}

#[test]
fn four_node_cluster_needs_three_votes() {
    let mut n = node(1, 4, plain());
    assert_eq!(n.quorum(), 3);
    time_out(&mut n);
    let grant = vote(1, true, false);
    n.receive(ms(300), 2, grant.clone());
    assert_eq!(n.raft_role(), RaftRole::Candidate);
    n.receive(ms(300), 3, grant);
    assert_eq!(n.raft_role(), RaftRole::Leader);
}

#[test]
fn at_most_one_vote_per_term() {
    let mut n = node(1, 3, plain());
    let req = |term| Message::RequestVote {
        term,
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: false,
    };
    n.receive(ms(1), 2, req(1));
    let r = n.take_ready();
    assert_eq!(sent(&r), vec![(2, vote(1, true, false))]);
    assert_eq!(
        hard_states(&r),
        vec![HardState {
            current_term: 1,
            voted_for: Some(2)
        }]
    );
    n.receive(ms(2), 3, req(1));
    let r = n.take_ready();
    assert_eq!(sent(&r), vec![(3, vote(1, false, false))]);
    // The same candidate asking again (a retransmission) gets the vote again.
    n.receive(ms(3), 2, req(1));
    assert_eq!(sent(&n.take_ready()), vec![(2, vote(1, true, false))]);
}

#[test]
fn vote_denied_to_a_candidate_whose_log_is_less_up_to_date() {
    // Our log ends at (term 2, index 3).
    let mut n = node_with(1, 3, plain(), 2, &[1, 2, 2]);
    // Lower last term, longer log: denied.
    n.receive(
        ms(1),
        2,
        Message::RequestVote {
            term: 3,
            last_log_index: 9,
            last_log_term: 1,
            pre_vote: false,
        },
    );
    assert!(matches!(
        sent(&n.take_ready())[0].1,
        Message::RequestVoteResponse {
            vote_granted: false,
            ..
        }
    ));
    // Same last term, shorter log: denied.
    n.receive(
        ms(2),
        2,
        Message::RequestVote {
            term: 4,
            last_log_index: 2,
            last_log_term: 2,
            pre_vote: false,
        },
    );
    assert!(matches!(
        sent(&n.take_ready())[0].1,
        Message::RequestVoteResponse {
            vote_granted: false,
            ..
        }
    ));
    // Same last term, same length: granted.
    n.receive(
        ms(3),
        2,
        Message::RequestVote {
            term: 5,
            last_log_index: 3,
            last_log_term: 2,
            pre_vote: false,
        },
    );
    assert!(matches!(
        sent(&n.take_ready())[0].1,
        Message::RequestVoteResponse {
            vote_granted: true,
            ..
        }
    ));
}

#[test]
fn any_rpc_with_a_higher_term_makes_a_leader_step_down() {
    let mut l = elected_leader(3, plain());
    l.receive(
        ms(400),
        3,
        Message::AppendEntriesResponse {
            term: 5,
            success: false,
            match_index: 0,
            conflict_index: 0,
            conflict_term: None,
        },
    );
    assert_eq!(l.raft_role(), RaftRole::Follower);
    assert_eq!(
        l.hard_state(),
        HardState {
            current_term: 5,
            voted_for: None
        }
    );
    assert_eq!(
        hard_states(&l.take_ready()),
        vec![HardState {
            current_term: 5,
            voted_for: None
        }]
    );
}

#[test]
fn stale_term_requests_are_rejected_with_the_current_term() {
    let mut n = node_with(1, 3, plain(), 4, &[]);
    n.receive(ms(1), 2, append(3, 0, 0, vec![], 0));
    n.receive(ms(1), 3, ask(3, false));
    let msgs = sent(&n.take_ready());
    assert!(matches!(
        msgs[0],
        (
            2,
            Message::AppendEntriesResponse {
                term: 4,
                success: false,
                ..
            }
        )
    ));
    assert!(matches!(
        msgs[1],
        (
            3,
            Message::RequestVoteResponse {
                term: 4,
                vote_granted: false,
                ..
            }
        )
    ));
    assert_eq!(n.hard_state().current_term, 4);
    assert_eq!(n.status().leader, None);
}

#[test]
fn pre_vote_round_does_not_change_the_term() {
    let mut n = node(
        1,
        3,
        Config {
            pre_vote: true,
            ..plain()
        },
    );
    let r = time_out(&mut n);
    assert_eq!(n.raft_role(), RaftRole::PreCandidate);
    assert_eq!(n.status().role, Role::Candidate);
    assert_eq!(n.hard_state().current_term, 0);
    assert!(hard_states(&r).is_empty(), "a pre-vote persists nothing");
    for (_, m) in sent(&r) {
        assert_eq!(m, ask(1, true));
    }
    // The voter does not change its term either.
    let mut v = node(2, 3, plain());
    v.receive(ms(300), 1, ask(1, true));
    let r = v.take_ready();
    assert_eq!(sent(&r), vec![(1, vote(1, true, true))]);
    assert_eq!(v.hard_state().current_term, 0);
    assert!(hard_states(&r).is_empty());
}

#[test]
fn pre_candidate_with_a_majority_of_pre_votes_starts_a_real_election() {
    let mut n = node(
        1,
        3,
        Config {
            pre_vote: true,
            ..plain()
        },
    );
    time_out(&mut n);
    n.receive(ms(300), 2, vote(1, true, true));
    assert_eq!(n.raft_role(), RaftRole::Candidate);
    assert_eq!(
        n.hard_state(),
        HardState {
            current_term: 1,
            voted_for: Some(1)
        }
    );
}

#[test]
fn pre_vote_denied_while_the_leader_is_heard() {
    let mut v = node(2, 3, plain());
    v.receive(ms(10), 1, append(1, 0, 0, vec![], 0));
    v.take_ready();
    v.receive(ms(20), 3, ask(2, true));
    assert!(matches!(
        sent(&v.take_ready())[0].1,
        Message::RequestVoteResponse {
            vote_granted: false,
            term: 1,
            ..
        }
    ));
    // Once the leader has been silent for an election timeout, the pre-vote is granted.
    v.receive(ms(10 + 150), 3, ask(2, true));
    assert!(matches!(
        sent(&v.take_ready())[0].1,
        Message::RequestVoteResponse {
            vote_granted: true,
            term: 2,
            ..
        }
    ));
}

#[test]
fn check_quorum_vote_requests_are_ignored_while_the_leader_is_heard() {
    let mut v = node(
        2,
        3,
        Config {
            check_quorum: true,
            ..plain()
        },
    );
    v.receive(ms(10), 1, append(1, 0, 0, vec![], 0));
    v.take_ready();
    v.receive(ms(20), 3, ask(7, false));
    assert!(sent(&v.take_ready()).is_empty());
    assert_eq!(v.hard_state().current_term, 1, "the lease keeps the term");
}

#[test]
fn check_quorum_leader_without_a_majority_steps_down() {
    let mut l = elected_leader(
        5,
        Config {
            check_quorum: true,
            ..plain()
        },
    );
    let start = l.now;
    // Only node 2 answers during the first check-quorum window: 2 of 5 is not a majority.
    l.receive(start + ms(10), 2, ok(1, 1));
    l.tick(start + ms(150));
    assert_eq!(l.raft_role(), RaftRole::Follower);
    assert_eq!(l.hard_state().current_term, 1);
}

#[test]
fn check_quorum_leader_with_a_majority_stays() {
    let mut l = elected_leader(
        3,
        Config {
            check_quorum: true,
            ..plain()
        },
    );
    let start = l.now;
    l.receive(start + ms(10), 2, ok(1, 1));
    l.tick(start + ms(150));
    assert_eq!(l.raft_role(), RaftRole::Leader);
}

#[test]
fn single_node_elects_itself_and_commits_alone_once_its_write_is_durable() {
    let mut n = node(1, 1, Config::default());
    let r = time_out(&mut n);
    assert_eq!(n.raft_role(), RaftRole::Leader);
    n.persisted(ms(300), r.appended_through().unwrap());
    let pos = n.propose(ms(400), Bytes::from_static(b"x")).unwrap();
    assert_eq!(pos, Position::new(1, 2));
    let r = n.take_ready();
    let committed: Vec<Position> = r.committed.iter().map(|e| e.pos).collect();
    assert_eq!(
        committed,
        vec![Position::new(1, 1)],
        "the no-op was durable, the command is not yet"
    );
    n.persisted(ms(401), r.appended_through().unwrap());
    let committed: Vec<Position> = n.take_ready().committed.iter().map(|e| e.pos).collect();
    assert_eq!(committed, vec![pos]);
}

#[test]
fn candidate_steps_down_on_append_entries_from_the_new_leader() {
    let mut n = node(1, 3, plain());
    time_out(&mut n);
    n.receive(ms(400), 2, append(1, 0, 0, vec![], 0));
    assert_eq!(n.raft_role(), RaftRole::Follower);
    assert_eq!(n.status().leader, Some(2));
}
