//! Unit tests of the ZAB core: each drives servers by hand and checks one rule.

use crate::election::ServerState;
use crate::message::{Message, Packet};
use crate::replica::{Config, Conn, HardState, ZabReplica, ZabRole};
use crate::zxid::Zxid;
use bytes::Bytes;
use consensus_core::{Entry, NodeId, PersistOp, ProposeError, Ready, Recovered, Replica};
use std::time::Duration;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn server(id: NodeId, n: u64, hard: HardState, log: &[Zxid]) -> ZabReplica {
    let voters: Vec<NodeId> = (1..=n).collect();
    let entries = log
        .iter()
        .map(|z| Entry::command(z.position(), Bytes::from(format!("t{z:?}"))))
        .collect();
    let recovered = Recovered {
        hard_state: hard,
        snapshot: None,
        entries,
    };
    let mut s = ZabReplica::new(id, &voters, Config::default(), 1, recovered, Duration::ZERO);
    s.take_ready();
    s
}

fn epochs(accepted_epoch: u64, current_epoch: u64) -> HardState {
    HardState {
        accepted_epoch,
        current_epoch,
    }
}

/// The quorum packets in a Ready, with their receivers.
fn packets(r: &Ready<Message, HardState>) -> Vec<(NodeId, Packet)> {
    r.messages
        .iter()
        .flat_map(|e| match &e.msg {
            Message::Quorum { packet, .. } => vec![(e.to, packet.clone())],
            Message::QuorumBatch { packets, .. } => {
                packets.iter().map(|p| (e.to, p.clone())).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Index of the first persist op matching `f`.
fn op_index(
    r: &Ready<Message, HardState>,
    f: impl Fn(&PersistOp<HardState>) -> bool,
) -> Option<usize> {
    r.persist.iter().position(f)
}

/// Packet number `seq` on connection `conn` (either direction).
fn quorum_packet(conn: u64, seq: u64, packet: Packet) -> Message {
    let mut c = Conn::new(conn);
    c.send_seq = seq;
    c.packet(packet)
}

/// A follower's connection id, to address packets to it as its leader would.
fn conn_of(s: &ZabReplica) -> u64 {
    match &s.role {
        ZabRole::Following(f) => f.conn.id,
        _ => panic!("not following"),
    }
}

/// Delivers packets from the leader to a follower on the follower's connection.
struct Feed {
    conn: Conn,
    leader: NodeId,
}

impl Feed {
    fn to(s: &ZabReplica, leader: NodeId) -> Feed {
        Feed {
            conn: Conn::new(conn_of(s)),
            leader,
        }
    }
    fn send(&mut self, s: &mut ZabReplica, at: u64, packet: Packet) -> Ready<Message, HardState> {
        s.receive(ms(at), self.leader, self.conn.packet(packet));
        s.take_ready()
    }
}

/// A follower of leader 3 that has just connected (FOLLOWERINFO sent).
fn connected_follower(hard: HardState, log: &[Zxid]) -> (ZabReplica, Feed) {
    let mut f = server(2, 3, hard, log);
    f.become_follower(3);
    let r = f.take_ready();
    assert_eq!(
        packets(&r),
        vec![(
            3,
            Packet::FollowerInfo {
                accepted_epoch: hard.accepted_epoch
            }
        )]
    );
    let feed = Feed::to(&f, 3);
    (f, feed)
}

fn z(e: u32, c: u32) -> Zxid {
    Zxid::new(e, c)
}

// ---- discovery ----

#[test]
fn the_new_epoch_is_one_more_than_the_highest_accepted_epoch_of_a_quorum() {
    let mut l = server(3, 5, epochs(4, 4), &[]);
    l.become_leader();
    l.receive(
        ms(1),
        1,
        quorum_packet(11, 0, Packet::FollowerInfo { accepted_epoch: 6 }),
    );
    assert!(packets(&l.take_ready()).is_empty(), "2 of 5: no quorum yet");
    l.receive(
        ms(2),
        2,
        quorum_packet(12, 0, Packet::FollowerInfo { accepted_epoch: 5 }),
    );
    let r = l.take_ready();
    let infos: Vec<_> = packets(&r);
    assert_eq!(
        infos,
        vec![
            (1, Packet::LeaderInfo { new_epoch: 7 }),
            (2, Packet::LeaderInfo { new_epoch: 7 })
        ]
    );
    // acceptedEpoch is in the same Ready, so it is durable before LEADERINFO leaves.
    assert_eq!(
        op_index(&r, |op| *op == PersistOp::HardState(epochs(7, 4))),
        Some(0)
    );
    // A learner that connects later is offered the same epoch at once.
    l.receive(
        ms(3),
        4,
        quorum_packet(14, 0, Packet::FollowerInfo { accepted_epoch: 7 }),
    );
    assert_eq!(
        packets(&l.take_ready()),
        vec![(4, Packet::LeaderInfo { new_epoch: 7 })]
    );
}

/// A leader of 5 (epochs (4, 4)) to which learners 1 and 2 connected with `accepted_epoch`.
fn leading_with_two_learners(accepted_epoch: u64) -> ZabReplica {
    let mut l = server(3, 5, epochs(4, 4), &[]);
    l.become_leader();
    for (from, conn) in [(1, 11), (2, 12)] {
        l.receive(
            ms(1),
            from,
            quorum_packet(conn, 0, Packet::FollowerInfo { accepted_epoch }),
        );
    }
    l.take_ready();
    l
}

/// Learner `from` answers LEADERINFO on connection `conn` (its packet `seq`).
fn ack_epoch(l: &mut ZabReplica, from: NodeId, conn: u64, seq: u64, current_epoch: Option<u64>) {
    let ack = Packet::AckEpoch {
        current_epoch,
        last_zxid: Zxid::default(),
    };
    l.receive(ms(2 + seq), from, quorum_packet(conn, seq, ack));
}

#[test]
fn a_learner_that_promised_a_newer_epoch_makes_the_leader_start_over_above_it() {
    // Issue 10, bug 3: the learner would refuse epoch 7 forever; the leader adopts the
    // promise (never weaker) and looks again, so the next epoch is above 9.
    let mut l = leading_with_two_learners(6);
    l.receive(
        ms(3),
        4,
        quorum_packet(14, 0, Packet::FollowerInfo { accepted_epoch: 9 }),
    );
    let r = l.take_ready();
    assert!(
        packets(&r).is_empty(),
        "no LEADERINFO 7 to a learner that promised 9"
    );
    assert_eq!(r.persist, vec![PersistOp::HardState(epochs(9, 4))]);
    assert_eq!(l.server_state(), ServerState::Looking);
}

#[test]
fn an_epoch_ack_survives_the_learner_reconnecting_during_discovery() {
    // Issue 10, bug 5: a learner that acked the epoch and reconnects answers LEADERINFO with
    // -1; its first ack must still count, as in ZooKeeper.
    let mut l = leading_with_two_learners(4);
    ack_epoch(&mut l, 1, 11, 1, Some(4));
    l.take_ready();
    // Learner 1 reconnects: FOLLOWERINFO with the epoch it accepted, then ACKEPOCH -1.
    l.receive(
        ms(3),
        1,
        quorum_packet(21, 0, Packet::FollowerInfo { accepted_epoch: 5 }),
    );
    assert_eq!(
        packets(&l.take_ready()),
        vec![(1, Packet::LeaderInfo { new_epoch: 5 })]
    );
    ack_epoch(&mut l, 1, 21, 1, None);
    l.take_ready();
    ack_epoch(&mut l, 2, 12, 1, Some(4));
    // Leader, learner 1 (first ack) and learner 2: a quorum of 5 settles epoch 5.
    let r = l.take_ready();
    assert_eq!(r.persist, vec![PersistOp::HardState(epochs(5, 5))]);
}

#[test]
fn a_follower_persists_the_new_accepted_epoch_before_acknowledging_it() {
    let (mut f, mut feed) = connected_follower(epochs(3, 3), &[z(3, 1), z(3, 2)]);
    let r = feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 4 });
    assert_eq!(r.persist, vec![PersistOp::HardState(epochs(4, 3))]);
    assert_eq!(
        packets(&r),
        vec![(
            3,
            Packet::AckEpoch {
                current_epoch: Some(3),
                last_zxid: z(3, 2)
            }
        )]
    );
}

#[test]
fn a_follower_that_already_accepted_the_epoch_answers_minus_one() {
    let (mut f, mut feed) = connected_follower(epochs(4, 3), &[z(3, 2)]);
    let r = feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 4 });
    assert!(r.persist.is_empty());
    assert_eq!(
        packets(&r),
        vec![(
            3,
            Packet::AckEpoch {
                current_epoch: None,
                last_zxid: z(3, 2)
            }
        )]
    );
}

#[test]
fn a_follower_refuses_an_epoch_older_than_it_accepted() {
    let (mut f, mut feed) = connected_follower(epochs(6, 5), &[]);
    feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 5 });
    assert!(matches!(f.role, ZabRole::Looking));
}

#[test]
fn a_leader_gives_up_when_a_follower_is_ahead_of_it() {
    let mut l = server(3, 3, epochs(2, 2), &[z(2, 5)]);
    l.become_leader();
    l.receive(
        ms(1),
        1,
        quorum_packet(9, 0, Packet::FollowerInfo { accepted_epoch: 2 }),
    );
    l.take_ready();
    // Same currentEpoch, later zxid: ZooKeeper never copies history from a follower.
    l.receive(
        ms(2),
        1,
        quorum_packet(
            9,
            1,
            Packet::AckEpoch {
                current_epoch: Some(2),
                last_zxid: z(2, 9),
            },
        ),
    );
    assert!(matches!(l.role, ZabRole::Looking));
}

// ---- synchronization ----

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

/// What a restart finds in `dir`: the recovered state and the zxids of its log.
fn reopen(dir: &std::path::Path) -> (Recovered<HardState>, Vec<Zxid>) {
    use consensus_core::poll::now_or_never;
    use consensus_core::LogStore;
    let mut log: consensus_node::FileLog<HardState> = consensus_node::FileLog::open(dir).unwrap();
    let rec = now_or_never(log.recover()).unwrap().unwrap();
    let logged = rec
        .entries
        .iter()
        .map(|e| Zxid::from_position(e.pos).unwrap())
        .collect();
    (rec, logged)
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

// ---- broadcast ----

/// Follower 2 in broadcast under leader 3 in epoch 3.
fn broadcasting_follower() -> (ZabReplica, Feed) {
    let (mut f, mut feed) = connected_follower(epochs(2, 2), &[]);
    feed.send(&mut f, 1, Packet::LeaderInfo { new_epoch: 3 });
    feed.send(
        &mut f,
        2,
        Packet::Diff {
            zxid: Zxid::default(),
        },
    );
    feed.send(
        &mut f,
        3,
        Packet::NewLeader {
            zxid: Zxid::epoch_marker(3),
        },
    );
    feed.send(&mut f, 4, Packet::UpToDate);
    (f, feed)
}

#[test]
fn a_follower_logs_a_proposal_before_acknowledging_it() {
    let (mut f, mut feed) = broadcasting_follower();
    let data = consensus_core::Payload::Command(Bytes::from_static(b"x"));
    let r = feed.send(
        &mut f,
        5,
        Packet::Proposal {
            zxid: z(3, 1),
            data,
        },
    );
    assert!(matches!(&r.persist[..], [PersistOp::Append(es)] if es[0].pos == z(3, 1).position()));
    assert_eq!(packets(&r), vec![(3, Packet::Ack { zxid: z(3, 1) })]);
    let r = feed.send(&mut f, 6, Packet::Commit { zxid: z(3, 1) });
    assert_eq!(r.committed.len(), 1);
}

#[test]
fn a_commit_that_does_not_match_the_oldest_pending_proposal_leaves_the_ensemble() {
    let (mut f, mut feed) = broadcasting_follower();
    for c in 1..=2 {
        let data = consensus_core::Payload::Command(Bytes::from_static(b"x"));
        feed.send(
            &mut f,
            5,
            Packet::Proposal {
                zxid: z(3, c),
                data,
            },
        );
    }
    feed.send(&mut f, 6, Packet::Commit { zxid: z(3, 2) });
    assert!(matches!(f.role, ZabRole::Looking));
    assert_eq!(f.last_committed(), Zxid::default());
}

#[test]
fn a_gap_in_the_leaders_packets_breaks_the_connection_and_duplicates_are_ignored() {
    let (mut f, mut feed) = broadcasting_follower();
    // A duplicate of an earlier packet changes nothing.
    f.receive(ms(5), 3, quorum_packet(feed.conn.id, 0, Packet::Ping));
    assert!(f.take_ready().messages.is_empty());
    assert!(matches!(f.role, ZabRole::Following(_)));
    // A packet from further ahead means some were lost: the connection is gone.
    feed.conn.send_seq += 1;
    feed.send(&mut f, 6, Packet::Ping);
    assert!(matches!(f.role, ZabRole::Looking));
}

/// Runs three servers to an established leader, delivering instantly and reporting every
/// append as durable right away.
struct Pump {
    nodes: Vec<ZabReplica>,
    now: Duration,
}

impl Pump {
    fn new(n: u64, config: Config) -> Pump {
        let voters: Vec<NodeId> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                ZabReplica::new(
                    id,
                    &voters,
                    config.clone(),
                    1,
                    Recovered::default(),
                    Duration::ZERO,
                )
            })
            .collect();
        Pump {
            nodes,
            now: Duration::ZERO,
        }
    }

    fn deliver(&mut self) {
        for _ in 0..10_000 {
            let mut queue = Vec::new();
            for n in &mut self.nodes {
                if !n.has_ready() {
                    continue;
                }
                let r = n.take_ready();
                let appended = r.appended_through();
                if let Some(p) = appended {
                    n.persisted(self.now, p);
                }
                let from = n.id();
                queue.extend(r.messages.into_iter().map(|e| (from, e)));
            }
            if queue.is_empty() {
                return;
            }
            for (from, e) in queue {
                self.nodes[e.to as usize - 1].receive(self.now, from, e.msg);
            }
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += ms(1);
            for n in &mut self.nodes {
                n.tick(self.now);
            }
            self.deliver();
        }
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.is_established_leader())
    }
}

#[test]
fn an_ensemble_elects_synchronizes_and_commits() {
    let mut p = Pump::new(3, Config::default());
    p.run(ms(1000));
    let l = p.leader().expect("a leader");
    assert_eq!(l, 2, "equal histories: the highest id");
    let pos = p.nodes[l].propose(p.now, Bytes::from_static(b"a")).unwrap();
    assert_eq!(
        pos,
        Zxid::new(1, 1).position(),
        "first proposal of epoch 1 has counter 1"
    );
    p.deliver();
    for n in &p.nodes {
        assert_eq!(n.last_committed(), Zxid::new(1, 1));
    }
}

#[test]
fn the_leader_counts_its_own_ack_only_after_its_fsync() {
    let mut p = Pump::new(3, Config::default());
    p.run(ms(1000));
    let l = p.leader().unwrap();
    p.nodes[l].propose(p.now, Bytes::from_static(b"a")).unwrap();
    // Take the proposal's Ready but do not report it durable yet.
    let _ = p.nodes[l].take_ready();
    // One follower acks: 1 of 3 without the leader's own ack.
    let id = 1 + ((l + 1) % 3) as NodeId;
    let conn = match &p.nodes[l].role {
        ZabRole::Leading(le) => le.handlers[&id].conn.clone(),
        _ => unreachable!(),
    };
    let msg = quorum_packet(
        conn.id,
        conn.recv_seq,
        Packet::Ack {
            zxid: Zxid::new(1, 1),
        },
    );
    p.nodes[l].receive(p.now, id, msg);
    assert_eq!(p.nodes[l].last_committed(), Zxid::default());
    // The leader's fsync completes: now 2 of 3.
    p.nodes[l].persisted(p.now, Zxid::new(1, 1).position());
    assert_eq!(p.nodes[l].last_committed(), Zxid::new(1, 1));
}

#[test]
fn the_counter_limit_forces_a_new_epoch() {
    let config = Config {
        counter_limit: 4,
        ..Config::default()
    };
    let mut p = Pump::new(3, config);
    p.run(ms(1000));
    let l = p.leader().unwrap();
    for i in 1..=3 {
        p.nodes[l]
            .propose(p.now, Bytes::from(format!("c{i}")))
            .unwrap();
    }
    p.deliver();
    // Counter 4 would reach the limit: the leader gives up instead of proposing it.
    let e = p.nodes[l].propose(p.now, Bytes::from_static(b"c4"));
    assert_eq!(e, Err(ProposeError::NotLeader { leader: None }));
    p.run(ms(3000));
    let l2 = p.leader().expect("re-elected");
    let pos = p.nodes[l2]
        .propose(p.now, Bytes::from_static(b"c4"))
        .unwrap();
    assert_eq!(
        pos,
        Zxid::new(2, 1).position(),
        "a new epoch, counter restarted"
    );
    p.deliver();
    assert_eq!(p.nodes[l2].last_committed(), Zxid::new(2, 1));
}

// ---- liveness ----

#[test]
fn a_follower_whose_leader_is_silent_for_the_sync_limit_goes_looking() {
    let (mut f, _feed) = broadcasting_follower();
    // Last heard at 4 ms; syncLimit is 3 ticks of 100 ms.
    f.tick(ms(4 + 300));
    assert!(matches!(f.role, ZabRole::Following(_)));
    f.tick(ms(4 + 301));
    assert!(matches!(f.role, ZabRole::Looking));
}

#[test]
fn a_leader_without_a_synced_quorum_steps_down() {
    let mut p = Pump::new(3, Config::default());
    p.run(ms(1000));
    let l = p.leader().unwrap();
    let now = p.now;
    // Its followers fall silent: after syncLimit the leader drops them and gives up.
    let leader = &mut p.nodes[l];
    leader.tick(now + ms(200));
    assert!(leader.is_established_leader(), "within syncLimit it stays");
    leader.tick(now + ms(400));
    assert!(matches!(leader.role, ZabRole::Looking));
}

#[test]
fn the_leader_pings_its_learners_every_half_tick() {
    let mut p = Pump::new(3, Config::default());
    p.run(ms(1000));
    let l = p.leader().unwrap();
    let now = p.now;
    let leader = &mut p.nodes[l];
    leader.take_ready();
    let next = leader.next_deadline();
    assert!(next <= now + ms(50));
    leader.tick(next);
    let pings = packets(&leader.take_ready())
        .into_iter()
        .filter(|(_, p)| *p == Packet::Ping)
        .count();
    assert_eq!(pings, 2);
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
        };
        let persist = feed.send(&mut f, 2, Packet::Snap { snapshot }).persist;
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
