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
