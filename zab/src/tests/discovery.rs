//! Discovery: the new epoch, its acknowledgement, and who may lead.

use super::*;

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
