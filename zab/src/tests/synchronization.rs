//! Synchronization: DIFF, TRUNC and SNAP, NEWLEADER and UPTODATE, and crashes in between.

use super::*;

/// Leader 3 with history up to (2, 5); follower 1 connected and acked epoch 3 with `last`.
fn leader_syncing(last: Zxid) -> Ready<Message, HardState> {
    let mut l = server(
        3,
        3,
        epochs(2, 2),
        &[z(2, 1), z(2, 2), z(2, 3), z(2, 4), z(2, 5)],
    );
    l.become_leader();
    l.receive(
        ms(1),
        1,
        quorum_packet(9, 0, Packet::FollowerInfo { accepted_epoch: 2 }),
    );
    l.take_ready();
    l.receive(
        ms(2),
        1,
        quorum_packet(
            9,
            1,
            Packet::AckEpoch {
                current_epoch: Some(2),
                last_zxid: last,
            },
        ),
    );
    l.take_ready()
}

#[test]
fn the_leader_persists_current_epoch_before_the_first_sync_packet() {
    let r = leader_syncing(z(2, 3));
    assert_eq!(r.persist, vec![PersistOp::HardState(epochs(3, 3))]);
    let p = packets(&r);
    assert_eq!(p[0].1, Packet::Diff { zxid: z(2, 5) });
}

#[test]
fn a_diff_sends_the_missing_proposals_each_with_its_commit_then_newleader() {
    let p: Vec<Packet> = packets(&leader_syncing(z(2, 3)))
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let names: Vec<&str> = p.iter().map(Packet::name).collect();
    assert_eq!(
        names,
        vec![
            "DIFF",
            "PROPOSAL",
            "COMMIT",
            "PROPOSAL",
            "COMMIT",
            "NEWLEADER"
        ]
    );
    assert_eq!(
        p[5],
        Packet::NewLeader {
            zxid: Zxid::epoch_marker(3)
        }
    );
}

#[test]
fn a_follower_past_the_leader_is_truncated() {
    // Follower 1 re-registers having already accepted epoch 3 (ACKEPOCH -1, not counted),
    // holding proposals past the leader's history; follower 2 makes the quorum.
    let mut l = server(
        3,
        3,
        epochs(2, 2),
        &[z(2, 1), z(2, 2), z(2, 3), z(2, 4), z(2, 5)],
    );
    l.become_leader();
    for (id, conn) in [(1, 9), (2, 10)] {
        l.receive(
            ms(1),
            id,
            quorum_packet(conn, 0, Packet::FollowerInfo { accepted_epoch: 2 }),
        );
    }
    l.take_ready();
    l.receive(
        ms(2),
        1,
        quorum_packet(
            9,
            1,
            Packet::AckEpoch {
                current_epoch: None,
                last_zxid: z(2, 8),
            },
        ),
    );
    assert!(
        packets(&l.take_ready()).is_empty(),
        "a -1 does not count towards the quorum"
    );
    l.receive(
        ms(3),
        2,
        quorum_packet(
            10,
            1,
            Packet::AckEpoch {
                current_epoch: Some(2),
                last_zxid: z(2, 5),
            },
        ),
    );
    let to_1: Vec<Packet> = packets(&l.take_ready())
        .into_iter()
        .filter(|(to, _)| *to == 1)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        to_1,
        vec![
            Packet::Trunc { zxid: z(2, 5) },
            Packet::NewLeader {
                zxid: Zxid::epoch_marker(3)
            }
        ]
    );
}

#[test]
fn a_follower_with_a_proposal_from_an_older_epoch_is_sent_a_snapshot() {
    // ZOOKEEPER-1154: the follower led epoch 1 and logged (1, 9) alone.
    let p = packets(&leader_syncing(z(1, 9)));
    assert!(matches!(p[0].1, Packet::Snap { .. }));
    // The empty snapshot at zxid 0, then the whole history with commits.
    assert_eq!(p.len(), 1 + 2 * 5 + 1);
}

/// The leader's DIFF up to (2, 3): PROPOSAL and COMMIT of (2, 2) and (2, 3).
fn diff_two_committed_proposals(f: &mut ZabReplica, feed: &mut Feed) {
    feed.send(f, 2, Packet::Diff { zxid: z(2, 3) });
    for c in 2..=3 {
        let data = consensus_core::Payload::Command(Bytes::from_static(b"x"));
        feed.send(
            f,
            3,
            Packet::Proposal {
                zxid: z(2, c),
                data,
            },
        );
        feed.send(f, 3, Packet::Commit { zxid: z(2, c) });
    }
}

#[test]
fn newleader_logs_the_synced_transactions_then_current_epoch_then_acks() {
    let (mut f, mut feed) = connected_follower(epochs(2, 2), &[z(2, 1)]);
    feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 3 });
    diff_two_committed_proposals(&mut f, &mut feed);
    let r = feed.send(
        &mut f,
        4,
        Packet::NewLeader {
            zxid: Zxid::epoch_marker(3),
        },
    );
    let append = op_index(
        &r,
        |op| matches!(op, PersistOp::Append(es) if es.len() == 2),
    )
    .expect("txns logged");
    let epoch = op_index(&r, |op| *op == PersistOp::HardState(epochs(3, 3)))
        .expect("currentEpoch persisted");
    assert!(
        append < epoch,
        "transactions before currentEpoch (ZOOKEEPER-4643)"
    );
    assert_eq!(
        packets(&r),
        vec![(
            3,
            Packet::Ack {
                zxid: Zxid::epoch_marker(3)
            }
        )]
    );
    // Logged, not committed: the leader may never reach its NEWLEADER quorum (issue 10,
    // bug 1). UPTODATE says it did.
    assert_eq!(f.last_committed(), Zxid::default());
    assert!(f.take_ready().committed.is_empty());
    let r = feed.send(&mut f, 5, Packet::UpToDate);
    assert_eq!(f.last_committed(), z(2, 3));
    assert_eq!(r.committed.len(), 3);
}

/// ZOOKEEPER-4643 on a real disk: the follower crashes at every point of the sync that makes a
/// NEWLEADER's state durable; a restart that finds the new currentEpoch always finds the
/// synced transactions too (never the epoch without them).
#[test]
fn zookeeper_4643_a_crash_anywhere_in_the_newleader_sync_never_leaves_current_epoch_without_its_transactions(
) {
    use consensus_core::poll::now_or_never;
    use consensus_core::LogStore;
    use consensus_node::FileLog;
    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        now_or_never(f).expect("FileLog never waits")
    }
    let mut planned = usize::MAX;
    let mut n = 0;
    let mut saw_full = false;
    while n <= planned {
        let dir = tempfile::tempdir().unwrap();
        // The follower's disk before the sync: epochs (2, 2) and one transaction.
        let mut disk: FileLog<HardState> = FileLog::open(dir.path()).unwrap();
        run(disk.recover()).unwrap();
        let base = vec![
            PersistOp::HardState(epochs(2, 2)),
            PersistOp::Append(vec![Entry::command(
                z(2, 1).position(),
                Bytes::from_static(b"x"),
            )]),
        ];
        run(disk.write(&base)).unwrap();
        run(disk.sync()).unwrap();

        let (mut f, mut feed) = connected_follower(epochs(2, 2), &[z(2, 1)]);
        let mut persist = feed
            .send(&mut f, 1, Packet::LeaderInfo { new_epoch: 3 })
            .persist;
        run(disk.write(&persist)).unwrap();
        run(disk.sync()).unwrap();
        diff_two_committed_proposals(&mut f, &mut feed);
        persist = feed
            .send(
                &mut f,
                4,
                Packet::NewLeader {
                    zxid: Zxid::epoch_marker(3),
                },
            )
            .persist;
        run(disk.write(&persist)).unwrap();
        planned = disk.sync_prefix(n).unwrap();
        drop(disk);

        let (rec, logged) = reopen(dir.path());
        assert_eq!(rec.hard_state.accepted_epoch, 3, "crash after {n} steps");
        if rec.hard_state.current_epoch == 3 {
            assert_eq!(
                logged,
                vec![z(2, 1), z(2, 2), z(2, 3)],
                "crash after {n} of {planned} steps: currentEpoch 3 without its transactions"
            );
            saw_full = true;
        } else {
            assert_eq!(rec.hard_state.current_epoch, 2);
        }
        n += 1;
    }
    assert!(planned >= 2, "the sync writes transactions and the epoch");
    assert!(saw_full, "the complete sync persists currentEpoch 3");
}

#[test]
fn proposals_outstanding_at_sync_are_logged_and_acked_only_after_uptodate() {
    let (mut f, mut feed) = connected_follower(epochs(2, 2), &[]);
    feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 3 });
    feed.send(
        &mut f,
        2,
        Packet::Diff {
            zxid: Zxid::default(),
        },
    );
    let data = consensus_core::Payload::Command(Bytes::from_static(b"x"));
    feed.send(
        &mut f,
        3,
        Packet::Proposal {
            zxid: z(3, 1),
            data,
        },
    );
    let r = feed.send(
        &mut f,
        4,
        Packet::NewLeader {
            zxid: Zxid::epoch_marker(3),
        },
    );
    assert!(!r
        .persist
        .iter()
        .any(|op| matches!(op, PersistOp::Append(_))));
    let r = feed.send(&mut f, 5, Packet::UpToDate);
    assert!(r
        .persist
        .iter()
        .any(|op| matches!(op, PersistOp::Append(es) if es[0].pos == z(3, 1).position())));
    assert_eq!(packets(&r), vec![(3, Packet::Ack { zxid: z(3, 1) })]);
}

/// Issue 10, bug 2: SNAP on a real disk. The follower's log holds committed (2, 1)..(2, 3) and
/// a divergent (2, 4); the leader sends a snapshot at (3, 5). A crash after any step of the
/// follower's persist leaves the old log or the snapshot, never neither (the order used to be
/// "truncate everything, then store the snapshot").
#[test]
fn a_crash_anywhere_in_a_snap_leaves_the_old_log_or_the_snapshot() {
    use consensus_core::poll::now_or_never;
    use consensus_core::{LogStore, Snapshot};
    use consensus_node::FileLog;
    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        now_or_never(f).expect("FileLog never waits")
    }
    let old = [z(2, 1), z(2, 2), z(2, 3), z(2, 4)];
    let mut planned = usize::MAX;
    let mut n = 0;
    let mut saw_snapshot = false;
    while n <= planned {
        let dir = tempfile::tempdir().unwrap();
        let mut disk: FileLog<HardState> = FileLog::open(dir.path()).unwrap();
        run(disk.recover()).unwrap();
        let entries: Vec<Entry> = old
            .iter()
            .map(|z| Entry::command(z.position(), Bytes::from_static(b"x")))
            .collect();
        run(disk.write(&[
            PersistOp::HardState(epochs(2, 2)),
            PersistOp::Append(entries),
        ]))
        .unwrap();
        run(disk.sync()).unwrap();

        let (mut f, mut feed) = connected_follower(epochs(2, 2), &old);
        let persist = feed
            .send(&mut f, 1, Packet::LeaderInfo { new_epoch: 4 })
            .persist;
        run(disk.write(&persist)).unwrap();
        run(disk.sync()).unwrap();
        let snapshot = Snapshot {
            last: z(3, 5).position(),
            data: Bytes::from_static(b"state"),
            members: None,
        };
        let snap = Packet::Snap {
            last: snapshot.last,
            offset: 0,
            data: snapshot.data,
            done: true,
            members: None,
        };
        let persist = feed.send(&mut f, 2, snap).persist;
        run(disk.write(&persist)).unwrap();
        planned = disk.sync_prefix(n).unwrap();
        drop(disk);

        let (rec, logged) = reopen(dir.path());
        match &rec.snapshot {
            Some(s) => {
                assert_eq!(s.last, z(3, 5).position());
                saw_snapshot = true;
            }
            None => assert_eq!(
                logged, old,
                "crash after {n} of {planned} steps: neither the old log nor the snapshot"
            ),
        }
        n += 1;
    }
    assert!(saw_snapshot, "the complete SNAP stores the snapshot");
}

#[test]
fn a_snap_in_chunks_is_installed_once_the_last_arrives() {
    let (mut f, mut feed) = connected_follower(epochs(2, 2), &[z(2, 1)]);
    feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 4 });
    let last = z(3, 5).position();
    let chunk = |offset: u64, data: &'static [u8], done: bool| Packet::Snap {
        last,
        offset,
        data: Bytes::from_static(data),
        done,
        members: None,
    };
    let first = feed.send(&mut f, 2, chunk(0, b"sta", false));
    assert!(first.restore.is_none() && first.persist.is_empty());
    let last_chunk = feed.send(&mut f, 3, chunk(3, b"te", true));
    assert_eq!(
        last_chunk.restore,
        Some(consensus_core::Snapshot {
            last,
            data: Bytes::from_static(b"state"),
            members: None,
        })
    );
    assert!(last_chunk
        .persist
        .iter()
        .any(|op| matches!(op, PersistOp::Snapshot(s) if s.data == "state")));
}

#[test]
fn a_batch_of_packets_closes_at_the_byte_budget() {
    use consensus_core::Envelope;
    let proposal = |seq: u64| Envelope {
        to: 1,
        msg: Message::Quorum {
            conn: 7,
            seq,
            packet: Packet::Proposal {
                zxid: z(1, seq as u32 + 1),
                data: consensus_core::Payload::Command(Bytes::from(vec![0u8; 600])),
            },
        },
    };
    let out = crate::message::coalesce((0..5).map(proposal).collect(), 1000);
    // 600 bytes each, 1000 per frame: one proposal per frame, in order.
    assert_eq!(out.len(), 5);
    let out = crate::message::coalesce((0..5).map(proposal).collect(), 1200);
    assert_eq!(out.len(), 3, "two, two and one");
}
