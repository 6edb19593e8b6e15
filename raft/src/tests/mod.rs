//! Unit tests: each drives one core by hand and checks one rule of the paper.

mod election;
mod membership;
mod read;
mod replication;
mod snapshot;
mod transfer;

use crate::{Config, HardState, Message, RaftReplica};
use bytes::Bytes;
use consensus_core::{Entry, NodeId, PersistOp, Position, Ready, Recovered, Replica};
use std::time::Duration;

pub(crate) fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// Plain Raft: no pre-vote, no check-quorum (tests of those switch them on).
pub(crate) fn plain() -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::default()
    }
}

pub(crate) fn entries(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            Entry::command(
                Position::new(t, i as u64 + 1),
                Bytes::from(format!("e{}", i + 1)),
            )
        })
        .collect()
}

pub(crate) fn node_with(
    id: NodeId,
    n: u64,
    config: Config,
    term: u64,
    log_terms: &[u64],
) -> RaftReplica {
    let voters: Vec<NodeId> = (1..=n).collect();
    let recovered = Recovered {
        hard_state: HardState {
            current_term: term,
            voted_for: None,
        },
        snapshot: None,
        entries: entries(log_terms),
    };
    RaftReplica::new(id, &voters, config, 7, recovered, Duration::ZERO)
}

pub(crate) fn node(id: NodeId, n: u64, config: Config) -> RaftReplica {
    node_with(id, n, config, 0, &[])
}

pub(crate) fn sent(ready: &Ready<Message, HardState>) -> Vec<(NodeId, Message)> {
    ready
        .all_messages()
        .map(|e| (e.to, e.msg.clone()))
        .collect()
}

pub(crate) fn hard_states(ready: &Ready<Message, HardState>) -> Vec<HardState> {
    ready
        .persist
        .iter()
        .filter_map(|op| match op {
            PersistOp::HardState(h) => Some(*h),
            _ => None,
        })
        .collect()
}

/// Fires the election timer of `n` and returns the ready it produced.
/// Takes the Ready as a driver whose disk is instant would: what it appends is durable at
/// once (a leader counts its own copy toward a commit only then).
pub(crate) fn durable(n: &mut RaftReplica) -> Ready<Message, HardState> {
    let mut r = n.take_ready();
    if let Some(through) = r.appended_through() {
        let now = n.now;
        n.persisted(now, through);
        // What became committed with it is handed over too.
        let next = n.take_ready();
        r.committed.extend(next.committed);
        r.early.extend(next.early);
        r.messages.extend(next.messages);
        r.persist.extend(next.persist);
    }
    r
}

pub(crate) fn time_out(n: &mut RaftReplica) -> Ready<Message, HardState> {
    let at = n.next_deadline();
    n.tick(at);
    n.take_ready()
}

/// Makes node 1 of an `n`-node cluster leader of term 1 (votes from 2 and 3).
pub(crate) fn elected_leader(n: u64, config: Config) -> RaftReplica {
    let mut l = node(
        1,
        n,
        Config {
            pre_vote: false,
            ..config
        },
    );
    time_out(&mut l);
    let now = l.now;
    for v in 2..=(n / 2 + 1) {
        l.receive(
            now,
            v,
            Message::RequestVoteResponse {
                term: 1,
                vote_granted: true,
                pre_vote: false,
            },
        );
    }
    assert_eq!(l.raft_role(), crate::RaftRole::Leader);
    l.take_ready();
    l
}

/// A successful AppendEntries answer.
pub(crate) fn ok(term: u64, match_index: u64) -> Message {
    Message::AppendEntriesResponse {
        term,
        success: true,
        match_index,
        conflict_index: 0,
        conflict_term: None,
    }
}

/// An AppendEntries request.
pub(crate) fn append(
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry>,
    leader_commit: u64,
) -> Message {
    Message::AppendEntries {
        term,
        prev_log_index,
        prev_log_term,
        entries,
        leader_commit,
    }
}

/// A (pre-)vote answer.
pub(crate) fn vote(term: u64, vote_granted: bool, pre_vote: bool) -> Message {
    Message::RequestVoteResponse {
        term,
        vote_granted,
        pre_vote,
    }
}

/// A (pre-)vote request from a candidate with an empty log.
pub(crate) fn ask(term: u64, pre_vote: bool) -> Message {
    Message::RequestVote {
        term,
        last_log_index: 0,
        last_log_term: 0,
        pre_vote,
    }
}
