use super::*;
use crate::ProgressState;
use consensus_core::Snapshot;

fn snap(term: u64, index: u64) -> Snapshot {
    Snapshot {
        last: Position::new(term, index),
        data: Bytes::from(format!("state@{index}")),
        members: None,
    }
}

fn install(term: u64, last_included_term: u64, last_included_index: u64) -> Message {
    Message::InstallSnapshot {
        term,
        last_included_index,
        last_included_term,
        offset: 0,
        data: Bytes::from(format!("state@{last_included_index}")),
        done: true,
        members: None,
    }
}

/// What a leader of `1..=voters` sends: the last chunk names the configuration.
fn install_of(
    voters: u64,
    term: u64,
    last_included_term: u64,
    last_included_index: u64,
) -> Message {
    let mut m = install(term, last_included_term, last_included_index);
    if let Message::InstallSnapshot { members, .. } = &mut m {
        *members = Some(Box::new(members_of(voters)));
    }
    m
}

fn members_of(voters: u64) -> consensus_core::Membership {
    consensus_core::Membership::of_voters(&(1..=voters).collect::<Vec<_>>())
}

/// The follower's answer once the snapshot at `index` is installed (or covered).
fn installed(term: u64, index: u64) -> Message {
    Message::InstallSnapshotResponse {
        term,
        match_index: index,
        last_included_index: index,
        next_offset: None,
    }
}

#[test]
fn a_snapshot_is_asked_for_after_the_threshold_of_applied_entries() {
    let mut f = node(
        2,
        3,
        Config {
            snapshot_threshold: 3,
            ..plain()
        },
    );
    f.receive(ms(1), 1, append(1, 0, 0, entries(&[1, 1]), 2));
    assert_eq!(f.take_ready().snapshot_at, None, "2 applied, threshold 3");
    f.receive(
        ms(2),
        1,
        append(1, 2, 1, entries(&[1, 1, 1])[2..].to_vec(), 3),
    );
    let r = f.take_ready();
    assert_eq!(r.snapshot_at, Some(Position::new(1, 3)));
    // Asked once, not again until the snapshot comes back.
    f.receive(ms(3), 1, append(1, 3, 1, vec![], 3));
    assert_eq!(f.take_ready().snapshot_at, None);
}

#[test]
fn compaction_drops_the_covered_prefix_and_persists_the_snapshot() {
    let mut f = node_with(
        2,
        3,
        Config {
            snapshot_threshold: 3,
            ..plain()
        },
        1,
        &[1, 1, 1, 1],
    );
    f.receive(ms(1), 1, append(1, 4, 1, vec![], 4));
    assert_eq!(f.take_ready().snapshot_at, Some(Position::new(1, 4)));
    f.compact(ms(2), snap(1, 3));
    let r = f.take_ready();
    let taken = Snapshot {
        members: Some(Box::new(members_of(3))),
        ..snap(1, 3)
    };
    assert_eq!(
        r.persist,
        vec![PersistOp::Snapshot(taken)],
        "with its configuration"
    );
    assert_eq!(f.log().snapshot_index(), 3);
    assert_eq!(f.log().last_index(), 4);
    // A snapshot that is not of this log is refused.
    f.compact(ms(3), snap(7, 4));
    assert!(f.take_ready().persist.is_empty());
    assert_eq!(f.log().snapshot_index(), 3);
}

#[test]
fn leader_sends_a_snapshot_when_the_next_entry_is_compacted() {
    let mut l = elected_leader(3, plain());
    for i in 0..5 {
        l.propose(ms(400), Bytes::from(format!("c{i}"))).unwrap();
    }
    l.receive(ms(401), 2, ok(1, 6));
    durable(&mut l);
    assert_eq!(l.commit_index(), 6);
    l.compact(ms(402), snap(1, 5));
    l.take_ready();
    // Follower 3 has nothing: the heartbeat's probe needs index 1, which is compacted.
    l.tick(l.next_deadline());
    let msgs = sent(&l.take_ready());
    assert!(msgs.contains(&(3, install_of(3, 1, 1, 5))), "{msgs:?}");
    assert_eq!(l.progress(3).unwrap().state, ProgressState::Snapshot);
    // Its answer moves the follower past the snapshot; the rest goes as entries.
    l.receive(ms(600), 3, installed(1, 5));
    assert_eq!(l.progress(3).unwrap().state, ProgressState::Replicate);
    let msgs = sent(&l.take_ready());
    assert!(msgs.iter().any(|(to, m)| *to == 3 && matches!(m, Message::AppendEntries { prev_log_index: 5, entries, .. } if entries.len() == 1)));
}

#[test]
fn follower_installs_a_snapshot_restores_and_discards_a_disagreeing_log() {
    let mut f = node_with(2, 3, plain(), 1, &[1, 1, 1]);
    f.receive(ms(1), 1, install(2, 2, 10));
    let r = f.take_ready();
    assert_eq!(
        r.persist,
        vec![
            PersistOp::HardState(HardState {
                current_term: 2,
                voted_for: None
            }),
            PersistOp::TruncateAfter(Position::new(2, 10)),
            PersistOp::Snapshot(snap(2, 10))
        ]
    );
    assert_eq!(r.restore, Some(snap(2, 10)));
    assert!(r.committed.is_empty());
    assert_eq!(sent(&r), vec![(1, installed(2, 10))]);
    assert_eq!(f.commit_index(), 10);
    assert_eq!(f.log().last_position(), Position::new(2, 10));
    // The log continues right after the snapshot.
    f.receive(
        ms(2),
        1,
        append(
            2,
            10,
            2,
            vec![Entry::command(Position::new(2, 11), Bytes::new())],
            11,
        ),
    );
    let r = f.take_ready();
    assert_eq!(r.committed.len(), 1);
}

#[test]
fn follower_keeps_entries_after_a_snapshot_its_log_agrees_with() {
    let mut f = node_with(2, 3, plain(), 1, &[1, 1, 1, 1, 1]);
    f.receive(ms(1), 1, install(1, 1, 3));
    let r = f.take_ready();
    assert_eq!(r.persist, vec![PersistOp::Snapshot(snap(1, 3))]);
    assert_eq!(f.log().last_index(), 5);
}

#[test]
fn an_old_snapshot_is_acknowledged_but_not_installed() {
    let mut f = node_with(2, 3, plain(), 1, &[1, 1, 1, 1, 1]);
    f.receive(ms(1), 1, append(1, 5, 1, vec![], 5));
    f.take_ready();
    f.receive(ms(2), 1, install(1, 1, 3));
    let r = f.take_ready();
    assert!(r.persist.is_empty() && r.restore.is_none());
    assert_eq!(sent(&r), vec![(1, installed(1, 3))]);
}

#[test]
fn appends_reaching_into_the_snapshot_skip_the_covered_entries() {
    let mut f = node(2, 3, plain());
    f.receive(ms(1), 1, install(1, 1, 3));
    f.take_ready();
    // The leader resends entries 2..=5; 2 and 3 are inside the snapshot.
    let es: Vec<Entry> = (2..=5)
        .map(|i| Entry::command(Position::new(1, i), Bytes::new()))
        .collect();
    f.receive(ms(2), 1, append(1, 1, 1, es, 5));
    let r = f.take_ready();
    assert_eq!(f.log().last_index(), 5);
    assert_eq!(
        r.committed.iter().map(|e| e.pos.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert!(matches!(
        sent(&r)[0].1,
        Message::AppendEntriesResponse {
            success: true,
            match_index: 5,
            ..
        }
    ));
}

#[test]
fn a_node_restarts_from_its_snapshot_and_log() {
    let voters = [1, 2, 3];
    let recovered = Recovered {
        hard_state: HardState {
            current_term: 2,
            voted_for: None,
        },
        snapshot: Some(snap(2, 10)),
        entries: vec![Entry::command(Position::new(2, 11), Bytes::new())],
    };
    let mut n = RaftReplica::new(2, &voters, plain(), 1, recovered, Duration::ZERO);
    assert_eq!(n.log().last_position(), Position::new(2, 11));
    assert_eq!(n.commit_index(), 10);
    let r = n.take_ready();
    assert_eq!(
        r.restore,
        Some(snap(2, 10)),
        "the state machine starts from the snapshot"
    );
    assert!(r.committed.is_empty());
}

#[test]
fn heartbeat_to_a_follower_whose_match_was_compacted_sends_the_snapshot() {
    let mut l = elected_leader(
        3,
        Config {
            max_inflight: 1,
            max_entries_per_message: 10,
            ..plain()
        },
    );
    l.receive(ms(400), 2, ok(1, 1));
    for i in 0..10 {
        l.propose(ms(400), Bytes::from(format!("c{i}"))).unwrap();
    }
    durable(&mut l); // entries 2..=11 in flight to node 2: its pipeline is full
    for i in 10..15 {
        l.propose(ms(400), Bytes::from(format!("c{i}"))).unwrap();
    }
    durable(&mut l);
    l.receive(ms(401), 3, ok(1, 16));
    l.take_ready();
    l.compact(ms(402), snap(1, 11));
    l.take_ready();
    // Node 2's next entry (12) is still in the log, but its match (1) is inside the snapshot,
    // so the heartbeat cannot start there.
    l.tick(l.next_deadline());
    let msgs = sent(&l.take_ready());
    assert!(msgs.contains(&(2, install_of(3, 1, 1, 11))), "{msgs:?}");
}

/// A leader of 3 whose entries 1..=6 are compacted into a 10-byte snapshot, sending at most
/// `max` bytes per message; node 3 has nothing.
fn leader_with_a_snapshot(max: usize) -> RaftReplica {
    let mut l = elected_leader(
        3,
        Config {
            max_bytes_per_message: max,
            ..plain()
        },
    );
    for i in 0..5 {
        l.propose(ms(400), Bytes::from(format!("c{i}"))).unwrap();
    }
    l.receive(ms(401), 2, ok(1, 6));
    durable(&mut l);
    l.compact(
        ms(402),
        Snapshot {
            last: Position::new(1, 6),
            data: Bytes::from_static(b"0123456789"),
            members: None,
        },
    );
    l.take_ready();
    l
}

fn chunk_to_3(r: &Ready<Message, HardState>) -> Option<(u64, Bytes, bool)> {
    sent(r).into_iter().find_map(|(to, m)| match m {
        Message::InstallSnapshot {
            offset, data, done, ..
        } if to == 3 => Some((offset, data, done)),
        _ => None,
    })
}

fn need(from: u64) -> Message {
    Message::InstallSnapshotResponse {
        term: 1,
        match_index: 0,
        last_included_index: 6,
        next_offset: Some(from),
    }
}

#[test]
fn a_snapshot_goes_in_chunks_each_sent_when_the_last_is_acknowledged() {
    let mut l = leader_with_a_snapshot(4);
    l.tick(l.next_deadline());
    let first = chunk_to_3(&l.take_ready());
    assert_eq!(first, Some((0, Bytes::from_static(b"0123"), false)));
    // Nothing more until the follower answers (one chunk in flight).
    l.receive(ms(700), 2, ok(1, 6));
    assert_eq!(chunk_to_3(&l.take_ready()), None);
    l.receive(ms(701), 3, need(4));
    assert_eq!(
        chunk_to_3(&l.take_ready()),
        Some((4, Bytes::from_static(b"4567"), false))
    );
    l.receive(ms(702), 3, need(8));
    assert_eq!(
        chunk_to_3(&l.take_ready()),
        Some((8, Bytes::from_static(b"89"), true))
    );
    l.receive(ms(703), 3, installed(1, 6));
    assert_eq!(l.progress(3).unwrap().state, ProgressState::Replicate);
}

#[test]
fn an_unanswered_chunk_is_sent_again_and_the_follower_says_where_to_resume() {
    let mut l = leader_with_a_snapshot(4);
    l.tick(l.next_deadline());
    assert_eq!(chunk_to_3(&l.take_ready()).map(|c| c.0), Some(0));
    l.receive(ms(701), 3, need(4));
    assert_eq!(chunk_to_3(&l.take_ready()).map(|c| c.0), Some(4));
    // That chunk's answer is lost (a broken connection): a heartbeat sends it again (the
    // first after an answer assumes the chunk is on its way).
    let mut again = Vec::new();
    for _ in 0..2 {
        l.tick(l.next_deadline());
        again.extend(chunk_to_3(&l.take_ready()).map(|c| c.0));
    }
    assert_eq!(again, vec![4]);

    // The follower's side: a chunk it already has is answered with where it stands.
    let mut f = node(3, 3, plain());
    let chunk = |offset: u64, data: &'static [u8], done: bool| Message::InstallSnapshot {
        term: 1,
        last_included_index: 6,
        last_included_term: 1,
        offset,
        data: Bytes::from_static(data),
        done,
        members: None,
    };
    f.receive(ms(1), 1, chunk(0, b"0123", false));
    assert_eq!(sent(&f.take_ready()), vec![(1, need(4))]);
    f.receive(ms(2), 1, chunk(0, b"0123", false));
    assert_eq!(sent(&f.take_ready()), vec![(1, need(4))], "a repeat");
    f.receive(ms(3), 1, chunk(4, b"4567", false));
    f.receive(ms(4), 1, chunk(8, b"89", true));
    let r = f.take_ready();
    assert_eq!(
        r.restore.map(|s| s.data),
        Some(Bytes::from_static(b"0123456789"))
    );
    assert_eq!(f.commit_index(), 6);
}

#[test]
fn appends_stop_at_the_byte_budget_but_carry_at_least_one_entry() {
    let mut l = elected_leader(
        3,
        Config {
            max_bytes_per_message: 1000,
            ..plain()
        },
    );
    for _ in 0..3 {
        l.propose(ms(400), Bytes::from(vec![7u8; 700])).unwrap();
    }
    l.take_ready();
    // Node 2 answers the first probe: it is replicated to, pipelined.
    l.receive(ms(401), 2, ok(1, 1));
    let sizes: Vec<usize> = sent(&l.take_ready())
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::AppendEntries { entries, .. } if to == 2 => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert!(!sizes.is_empty());
    assert!(
        sizes.iter().all(|&n| n <= 1),
        "{sizes:?}: 700-byte entries, 1000-byte budget"
    );
}
