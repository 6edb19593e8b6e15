//! Reads outside the log (dissertation 6.4): ReadIndex, follower reads, leases.

use super::*;
use consensus_core::{Direct, ProposeError, ReadLevel, ReadState};

/// Three nodes on the in-memory driver, led, with the leader's no-op committed everywhere.
fn led(config: Config) -> (Direct<RaftReplica>, NodeId) {
    let voters = [1, 2, 3];
    let nodes = voters
        .iter()
        .map(|&id| RaftReplica::new(id, &voters, config.clone(), 7, Recovered::default(), ms(0)))
        .collect();
    let mut d = Direct::new(nodes);
    let l = d.elect(ms(1000)).expect("a leader");
    d.run_for(ms(100));
    (d, l)
}

fn probes(r: &Ready<Message, HardState>) -> usize {
    sent(r)
        .iter()
        .filter(|(_, m)| matches!(m, Message::ReadProbe { .. }))
        .count()
}

#[test]
fn a_read_index_is_answered_only_after_a_majority_confirms_a_round() {
    let (mut d, l) = led(plain());
    let now = d.now();
    let commit = d.node(l).commit_index();
    d.node_mut(l).read_index(now, 9, ReadLevel::Index).unwrap();
    let r = d.node_mut(l).take_ready();
    assert!(r.reads.is_empty(), "not before the round");
    assert_eq!(probes(&r), 2, "one probe to each follower");
    // One follower's acknowledgement makes a majority with the leader.
    let term = d.node(l).hard_state().current_term;
    let f = if l == 1 { 2 } else { 1 };
    d.node_mut(l)
        .receive(now, f, Message::ReadProbeResponse { term, round: 1 });
    let r = d.node_mut(l).take_ready();
    let at = d.node(l).log().position_at(commit).unwrap();
    assert_eq!(r.reads, vec![ReadState::at(9, at)]);
}

#[test]
fn a_leader_that_loses_its_majority_fails_its_reads_instead_of_answering() {
    let config = Config {
        check_quorum: true,
        ..plain()
    };
    let (mut d, l) = led(config);
    let now = d.now();
    d.node_mut(l).read_index(now, 1, ReadLevel::Index).unwrap();
    // The probes are lost: no follower answers, and check-quorum makes the leader step
    // down after an election timeout.
    let _ = d.node_mut(l).take_ready();
    d.node_mut(l).tick(now + ms(150));
    d.node_mut(l).tick(now + ms(300));
    assert_eq!(
        d.node_mut(l).take_ready().reads,
        vec![ReadState::refused(1, None)]
    );
}

#[test]
fn a_follower_asks_the_leader_for_the_read_index() {
    let (mut d, l) = led(plain());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    d.node_mut(f).read_index(now, 4, ReadLevel::Index).unwrap();
    d.pump();
    let commit = d.node(l).commit_index();
    let at = d.node(l).log().position_at(commit).unwrap();
    assert_eq!(d.take_reads(), vec![(f, ReadState::at(4, at))]);
}

#[test]
fn a_follower_forwards_the_reads_of_one_turn_in_one_request_per_kind() {
    let (mut d, l) = led(plain());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    for id in [4, 5, 6] {
        d.node_mut(f).read_index(now, id, ReadLevel::Index).unwrap();
    }
    d.node_mut(f).read_index(now, 7, ReadLevel::Lease).unwrap();
    let r = d.node_mut(f).take_ready();
    let messages = sent(&r);
    let asked: Vec<_> = messages
        .iter()
        .map(|(to, m)| match m {
            Message::ReadIndex { id, lease, .. } => (*to, *id, *lease),
            other => panic!("only read requests, not {other:?}"),
        })
        .collect();
    assert_eq!(asked, vec![(l, 4, false), (l, 7, true)]);
    // The requests reach the leader, which confirms them in a round and answers both; the
    // follower answers each read it carried.
    for (_, m) in messages {
        d.node_mut(l).receive(now, f, m);
    }
    d.pump();
    let commit = d.node(l).commit_index();
    let at = d.node(l).log().position_at(commit).unwrap();
    let mut reads = d.take_reads();
    reads.sort_by_key(|(_, r)| r.id);
    assert_eq!(
        reads,
        [4, 5, 6, 7].map(|id| (f, ReadState::at(id, at))).to_vec()
    );
}

#[test]
fn reads_that_arrive_while_a_request_is_in_flight_go_in_the_next_one() {
    let (mut d, l) = led(plain());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    let before = d.node(l).commit_index();
    d.node_mut(f).read_index(now, 4, ReadLevel::Index).unwrap();
    let first = sent(&d.node_mut(f).take_ready());
    assert!(matches!(first[..], [(to, Message::ReadIndex { id: 4, .. })] if to == l));
    // The request reaches the leader, which takes its commit point for read 4.
    for (_, m) in first {
        d.node_mut(l).receive(now, f, m);
    }
    // Reads 5 and 6 arrive at the follower after that: the index the leader already took may
    // miss a write that completes before they started, so they must not share it.
    d.node_mut(f).read_index(now, 5, ReadLevel::Index).unwrap();
    d.node_mut(f).read_index(now, 6, ReadLevel::Index).unwrap();
    assert!(
        !sent(&d.node_mut(f).take_ready())
            .iter()
            .any(|(_, m)| matches!(m, Message::ReadIndex { .. })),
        "one request in flight at a time"
    );
    // A write commits before the leader answers read 4.
    let written = d
        .node_mut(l)
        .propose(now, Bytes::from_static(b"w"))
        .unwrap();
    d.pump();
    let reads = d.take_reads();
    let index_of = |id: u64| {
        let r = reads.iter().find(|(_, r)| r.id == id).expect("answered");
        r.1.at.clone().expect("an index").seq
    };
    assert_eq!(index_of(4), before);
    assert!(index_of(5) >= written.seq && index_of(6) >= written.seq);
}

#[test]
fn a_read_request_left_unanswered_is_given_up_after_an_election_timeout() {
    let (mut d, l) = led(plain());
    let f = if l == 1 { 2 } else { 1 };
    let now = d.now();
    d.node_mut(f).read_index(now, 4, ReadLevel::Index).unwrap();
    let _lost = d.node_mut(f).take_ready();
    d.node_mut(f).read_index(now, 5, ReadLevel::Index).unwrap();
    let timeout = plain().election_timeout_min;
    assert_eq!(d.node(f).next_deadline(), now + timeout);
    // Heard from the leader meanwhile, so no election: only the request times out.
    d.node_mut(f).tick(now + timeout);
    let r = d.node_mut(f).take_ready();
    assert_eq!(r.reads, vec![ReadState::refused(4, Some(l))]);
    assert!(
        sent(&r)
            .iter()
            .any(|(to, m)| *to == l && matches!(m, Message::ReadIndex { id: 5, .. })),
        "the read waiting behind it goes now"
    );
}

#[test]
fn a_lease_answers_at_once_until_it_runs_out() {
    let config = Config {
        lease_reads: true,
        check_quorum: true,
        ..plain()
    };
    let (mut d, l) = led(config);
    // The first lease read needs a round; it starts the lease.
    let now = d.now();
    d.node_mut(l).read_index(now, 1, ReadLevel::Lease).unwrap();
    d.pump();
    assert_eq!(d.take_reads().len(), 1);
    // Within the lease: answered in the same Ready, with no probe.
    let now = d.now();
    d.node_mut(l).read_index(now, 2, ReadLevel::Lease).unwrap();
    let r = d.node_mut(l).take_ready();
    assert_eq!(r.reads.len(), 1);
    assert_eq!(probes(&r), 0);
    // Past election_timeout_min - lease_clock_drift after the round: a round again.
    let later = now + ms(150);
    d.node_mut(l)
        .read_index(later, 3, ReadLevel::Lease)
        .unwrap();
    let r = d.node_mut(l).take_ready();
    assert!(r.reads.is_empty());
    assert_eq!(probes(&r), 2);
}

#[test]
fn with_leases_a_node_that_just_started_refuses_votes() {
    let config = Config {
        lease_reads: true,
        check_quorum: true,
        ..plain()
    };
    let ask = Message::RequestVote {
        term: 5,
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: false,
    };
    let mut n = node(1, 3, config.clone());
    n.receive(ms(100), 2, ask.clone());
    assert_eq!(
        n.hard_state().voted_for,
        None,
        "within election_timeout_min of starting"
    );
    n.receive(ms(151), 2, ask.clone());
    assert_eq!(n.hard_state().voted_for, Some(2));
    // Without leases it votes at once.
    let mut n = node(
        1,
        3,
        Config {
            lease_reads: false,
            ..config
        },
    );
    n.receive(ms(100), 2, ask);
    assert_eq!(n.hard_state().voted_for, Some(2));
}

#[test]
fn only_index_and_lease_reads_have_a_read_index() {
    let (mut d, l) = led(plain());
    let now = d.now();
    for level in [ReadLevel::Log, ReadLevel::Local] {
        assert_eq!(
            d.node_mut(l).read_index(now, 1, level),
            Err(ProposeError::Unsupported)
        );
    }
}
