use super::*;
use crate::{ProgressState, RaftRole};
use consensus_core::ProposeError;

fn at(term: u64, index: u64) -> Entry {
    Entry::command(
        Position::new(term, index),
        Bytes::from(format!("new{index}")),
    )
}

#[test]
fn append_rejected_when_prev_log_index_is_missing_with_hint_at_log_end() {
    let mut f = node_with(2, 3, plain(), 1, &[1, 1]);
    f.receive(ms(1), 1, append(1, 5, 1, vec![], 0));
    let msgs = sent(&f.take_ready());
    assert_eq!(
        msgs,
        vec![(
            1,
            Message::AppendEntriesResponse {
                term: 1,
                success: false,
                match_index: 5,
                conflict_index: 3,
                conflict_term: None
            }
        )]
    );
}

#[test]
fn append_rejected_on_prev_log_term_mismatch_with_first_index_of_conflicting_term() {
    let mut f = node_with(2, 3, plain(), 3, &[1, 2, 2, 2]);
    f.receive(ms(1), 1, append(3, 4, 3, vec![], 0));
    let msgs = sent(&f.take_ready());
    assert_eq!(
        msgs,
        vec![(
            1,
            Message::AppendEntriesResponse {
                term: 3,
                success: false,
                match_index: 4,
                conflict_index: 2,
                conflict_term: Some(2)
            }
        )]
    );
}

#[test]
fn conflicting_entries_are_truncated_and_replaced() {
    let mut f = node_with(2, 3, plain(), 3, &[1, 2, 2]);
    f.receive(ms(1), 1, append(3, 1, 1, vec![at(3, 2)], 0));
    let r = f.take_ready();
    assert_eq!(f.log().last_position(), Position::new(3, 2));
    assert_eq!(
        r.persist,
        vec![
            PersistOp::TruncateAfter(Position::new(1, 1)),
            PersistOp::Append(vec![at(3, 2)])
        ]
    );
    assert!(matches!(
        sent(&r)[0].1,
        Message::AppendEntriesResponse {
            success: true,
            match_index: 2,
            ..
        }
    ));
}

#[test]
fn a_conflict_below_the_commit_index_is_reported_and_never_truncates() {
    // Issue 10, bug 6: this was a debug_assert, so release sweeps truncated silently.
    let mut f = node_with(2, 3, plain(), 3, &[1, 2, 2]);
    // A leader of term 3 commits through index 3.
    f.receive(ms(1), 1, append(3, 3, 2, vec![], 3));
    f.take_ready();
    // A message that Log Matching forbids: index 2 in term 3 after prev (1, 1).
    f.receive(ms(2), 1, append(3, 1, 1, vec![at(3, 2)], 3));
    let r = f.take_ready();
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(!r
        .persist
        .iter()
        .any(|op| matches!(op, PersistOp::TruncateAfter(_))));
    assert_eq!(f.log().last_position(), Position::new(2, 3));
}

#[test]
fn a_stale_append_never_truncates_matching_entries() {
    let mut f = node_with(2, 3, plain(), 1, &[]);
    f.receive(
        ms(1),
        1,
        append(1, 0, 0, vec![at(1, 1), at(1, 2), at(1, 3)], 0),
    );
    f.take_ready();
    // An older, shorter AppendEntries arrives late (reordered by the network).
    f.receive(ms(2), 1, append(1, 0, 0, vec![at(1, 1)], 0));
    let r = f.take_ready();
    assert_eq!(f.log().last_index(), 3);
    assert!(r.persist.is_empty());
    assert!(matches!(
        sent(&r)[0].1,
        Message::AppendEntriesResponse {
            success: true,
            match_index: 1,
            ..
        }
    ));
}

#[test]
fn follower_commit_index_is_min_of_leader_commit_and_last_new_entry() {
    let mut f = node_with(2, 3, plain(), 1, &[1, 1, 1, 1]);
    // The leader has committed 10, but this message only vouches for entries up to 2.
    f.receive(ms(1), 1, append(1, 1, 1, vec![at(1, 2)], 10));
    assert_eq!(f.commit_index(), 2);
    let r = f.take_ready();
    assert_eq!(
        r.committed.iter().map(|e| e.pos.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Commit never moves backwards.
    f.receive(ms(2), 1, append(1, 0, 0, vec![], 1));
    assert_eq!(f.commit_index(), 2);
    assert!(f.take_ready().committed.is_empty());
}

#[test]
fn leader_commits_once_a_majority_stores_an_entry() {
    let mut l = elected_leader(5, plain());
    l.propose(ms(400), Bytes::from_static(b"x")).unwrap();
    durable(&mut l);
    l.receive(ms(401), 2, ok(1, 2));
    assert_eq!(l.commit_index(), 0, "2 of 5 is not a majority");
    l.receive(ms(402), 3, ok(1, 2));
    assert_eq!(l.commit_index(), 2);
    let r = l.take_ready();
    assert_eq!(r.committed.len(), 2);
}

#[test]
fn leader_counts_its_own_copy_only_once_it_is_durable() {
    let mut l = elected_leader(3, plain());
    // The followers answer the leader's first probe: their pipelines are open.
    l.receive(ms(400), 2, ok(1, 1));
    l.receive(ms(400), 3, ok(1, 1));
    durable(&mut l);
    let pos = l.propose(ms(400), Bytes::from_static(b"x")).unwrap();
    let r = l.take_ready();
    // The AppendEntries go out before the leader's own write is durable (thesis 10.2.1).
    assert!(
        r.early
            .iter()
            .any(|e| matches!(e.msg, Message::AppendEntries { .. })),
        "{:?}",
        r.early
    );
    // One follower stores it: with the leader's copy not yet durable, 1 of 3 is not a majority.
    l.receive(ms(401), 2, ok(1, pos.seq));
    assert_eq!(l.commit_index(), 1);
    l.persisted(ms(402), r.appended_through().unwrap());
    assert_eq!(l.commit_index(), pos.seq);
    // A majority of followers commits without the leader's disk.
    let pos = l.propose(ms(403), Bytes::from_static(b"y")).unwrap();
    l.take_ready();
    l.receive(ms(404), 2, ok(1, pos.seq));
    l.receive(ms(404), 3, ok(1, pos.seq));
    assert_eq!(l.commit_index(), pos.seq);
}

#[test]
fn leader_never_commits_an_old_term_entry_by_counting_replicas() {
    // Figure 8: the leader of term 4 holds an entry of term 2 at index 2.
    let mut l = node_with(1, 5, plain(), 3, &[1, 2]);
    time_out(&mut l);
    for v in [2, 3] {
        l.receive(ms(400), v, vote(4, true, false));
    }
    assert_eq!(l.raft_role(), RaftRole::Leader);
    assert_eq!(
        l.log().last_position(),
        Position::new(4, 3),
        "the no-op of term 4"
    );
    durable(&mut l);
    // A majority stores index 2 (term 2) but not yet the term-4 no-op: nothing commits.
    l.receive(ms(401), 2, ok(4, 2));
    l.receive(ms(401), 3, ok(4, 2));
    assert_eq!(l.commit_index(), 0);
    // Once the term-4 entry is on a majority, it and everything before it commit.
    l.receive(ms(402), 2, ok(4, 3));
    l.receive(ms(402), 3, ok(4, 3));
    assert_eq!(l.commit_index(), 3);
}

#[test]
fn leader_backs_off_next_index_with_the_conflict_hint() {
    let mut l = node_with(1, 3, plain(), 4, &[1, 1, 4, 4]);
    time_out(&mut l);
    l.receive(ms(400), 2, vote(5, true, false));
    l.take_ready();
    assert_eq!(l.progress(3).unwrap().next_index, 5);
    // Follower 3 has term 3 at index 4 (from an old leader); its first term-3 entry is 3.
    l.receive(
        ms(401),
        3,
        Message::AppendEntriesResponse {
            term: 5,
            success: false,
            match_index: 4,
            conflict_index: 3,
            conflict_term: Some(3),
        },
    );
    // The leader has no term-3 entries, so it jumps to the hint.
    assert_eq!(l.progress(3).unwrap().next_index, 3);
    let msgs = sent(&l.take_ready());
    assert!(
        matches!(&msgs[0], (3, Message::AppendEntries { prev_log_index: 2, prev_log_term: 1, entries, .. }) if entries.len() == 3)
    );
}

#[test]
fn leader_hint_uses_its_own_last_entry_of_the_conflicting_term() {
    let mut l = node_with(1, 3, plain(), 4, &[1, 2, 2, 4]);
    time_out(&mut l);
    l.receive(ms(400), 2, vote(5, true, false));
    l.take_ready();
    l.receive(
        ms(401),
        3,
        Message::AppendEntriesResponse {
            term: 5,
            success: false,
            match_index: 4,
            conflict_index: 2,
            conflict_term: Some(2),
        },
    );
    assert_eq!(
        l.progress(3).unwrap().next_index,
        4,
        "last term-2 entry is 3, so resume at 4"
    );
}

#[test]
fn stale_rejections_are_ignored() {
    let mut l = elected_leader(3, plain());
    l.receive(ms(400), 2, ok(1, 1));
    assert_eq!(l.progress(2).unwrap().state, ProgressState::Replicate);
    // A rejection for prev index 0, older than the known match, changes nothing.
    l.receive(
        ms(401),
        2,
        Message::AppendEntriesResponse {
            term: 1,
            success: false,
            match_index: 0,
            conflict_index: 1,
            conflict_term: None,
        },
    );
    assert_eq!(l.progress(2).unwrap().state, ProgressState::Replicate);
    assert_eq!(l.progress(2).unwrap().match_index, 1);
}

#[test]
fn entries_are_batched_up_to_the_per_message_limit() {
    let mut l = elected_leader(
        3,
        Config {
            max_entries_per_message: 4,
            ..plain()
        },
    );
    l.receive(ms(400), 2, ok(1, 1));
    l.take_ready();
    for i in 0..10 {
        l.propose(ms(401), Bytes::from(format!("c{i}"))).unwrap();
    }
    let r = l.take_ready();
    let sizes: Vec<usize> = sent(&r)
        .into_iter()
        .filter(|(to, _)| *to == 2)
        .map(|(_, m)| match m {
            Message::AppendEntries { entries, .. } => entries.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![4, 4, 2], "one ready, batched and pipelined");
}

#[test]
fn pipelining_stops_at_max_inflight() {
    let mut l = elected_leader(
        3,
        Config {
            max_entries_per_message: 1,
            max_inflight: 2,
            ..plain()
        },
    );
    l.receive(ms(400), 2, ok(1, 1));
    l.take_ready();
    for i in 0..5 {
        l.propose(ms(401), Bytes::from(format!("c{i}"))).unwrap();
    }
    let r = l.take_ready();
    assert_eq!(sent(&r).iter().filter(|(to, _)| *to == 2).count(), 2);
    // An acknowledgement frees a slot and the next entry goes out.
    l.receive(ms(402), 2, ok(1, 2));
    let r = l.take_ready();
    assert_eq!(sent(&r).iter().filter(|(to, _)| *to == 2).count(), 1);
}

#[test]
fn probing_follower_gets_one_append_at_a_time() {
    let mut l = elected_leader(3, plain());
    // Follower 3 never answered: it is probed once; proposals do not flood it.
    for i in 0..3 {
        l.propose(ms(401), Bytes::from(format!("c{i}"))).unwrap();
        let r = l.take_ready();
        assert!(sent(&r).iter().all(|(to, _)| *to != 3), "proposal {i}");
    }
    // The heartbeat re-probes it.
    l.tick(l.next_deadline());
    assert_eq!(
        sent(&l.take_ready())
            .iter()
            .filter(|(to, _)| *to == 3)
            .count(),
        1
    );
}

#[test]
fn a_stalled_pipeline_falls_back_to_probing_at_the_next_heartbeat() {
    let mut l = elected_leader(3, plain());
    l.receive(ms(400), 2, ok(1, 1));
    l.propose(ms(400), Bytes::from_static(b"lost")).unwrap();
    l.take_ready();
    // The AppendEntries carrying index 2 is lost; two heartbeats pass without progress.
    l.tick(l.next_deadline());
    l.take_ready();
    l.tick(l.next_deadline());
    assert_eq!(l.progress(2).unwrap().state, ProgressState::Probe);
    let msgs = sent(&l.take_ready());
    assert!(msgs.iter().any(|(to, m)| *to == 2 && matches!(m, Message::AppendEntries { prev_log_index: 1, entries, .. } if entries.len() == 1)));
}

#[test]
fn followers_refuse_proposals_and_name_the_leader() {
    let mut f = node(2, 3, plain());
    assert_eq!(
        f.propose(ms(1), Bytes::new()),
        Err(ProposeError::NotLeader { leader: None })
    );
    f.receive(ms(2), 1, append(1, 0, 0, vec![], 0));
    assert_eq!(
        f.propose(ms(3), Bytes::new()),
        Err(ProposeError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn committed_entries_are_handed_out_once_and_in_order() {
    let mut f = node(2, 3, plain());
    f.receive(
        ms(1),
        1,
        append(1, 0, 0, vec![at(1, 1), at(1, 2), at(1, 3)], 2),
    );
    let r = f.take_ready();
    assert_eq!(
        r.committed.iter().map(|e| e.pos.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    f.receive(ms(2), 1, append(1, 3, 1, vec![], 3));
    let r = f.take_ready();
    assert_eq!(
        r.committed.iter().map(|e| e.pos.seq).collect::<Vec<_>>(),
        vec![3]
    );
    assert!(!f.has_ready());
}

#[test]
fn appended_entries_are_persisted_in_the_same_ready_as_the_acknowledgement() {
    let mut f = node(2, 3, plain());
    f.receive(ms(1), 1, append(1, 0, 0, vec![at(1, 1)], 0));
    let r = f.take_ready();
    assert_eq!(r.persist.last(), Some(&PersistOp::Append(vec![at(1, 1)])));
    assert!(matches!(
        sent(&r)[0].1,
        Message::AppendEntriesResponse { success: true, .. }
    ));
}

#[test]
fn heartbeats_do_not_multiply_probes_while_the_follower_answers() {
    let mut l = elected_leader(3, plain());
    let reject = Message::AppendEntriesResponse {
        term: 1,
        success: false,
        match_index: 0,
        conflict_index: 1,
        conflict_term: None,
    };
    // Follower 3 keeps rejecting; across many heartbeats exactly one probe stays in flight.
    for _ in 0..10 {
        let at = l.next_deadline();
        l.receive(at, 3, reject.clone());
        let after_reject = sent(&l.take_ready())
            .iter()
            .filter(|(to, _)| *to == 3)
            .count();
        l.tick(at);
        let after_heartbeat = sent(&l.take_ready())
            .iter()
            .filter(|(to, _)| *to == 3)
            .count();
        assert_eq!(
            after_reject + after_heartbeat,
            1,
            "one probe per answer, none extra"
        );
    }
}

#[test]
fn a_lost_probe_is_resent_at_the_next_heartbeat() {
    let mut l = elected_leader(3, plain());
    // Follower 3 never answered the first probe: the heartbeat sends another.
    l.tick(l.next_deadline());
    assert_eq!(
        sent(&l.take_ready())
            .iter()
            .filter(|(to, _)| *to == 3)
            .count(),
        1
    );
}
