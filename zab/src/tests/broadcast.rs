//! Broadcast: proposals, acknowledgements and commits, and a whole ensemble pumped by hand.

use super::*;

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

#[test]
fn an_ensemble_elects_synchronizes_and_commits() {
    let (mut d, l) = led_ensemble(Config::default());
    assert_eq!(l, 3, "equal histories: the highest id");
    let now = d.now();
    let pos = d
        .node_mut(l)
        .propose(now, Bytes::from_static(b"a"))
        .unwrap();
    assert_eq!(
        pos,
        Zxid::new(1, 1).position(),
        "first proposal of epoch 1 has counter 1"
    );
    d.pump();
    for id in 1..=3 {
        assert_eq!(d.node(id).last_committed(), Zxid::new(1, 1));
    }
}

#[test]
fn the_leader_sends_proposals_before_its_fsync_and_counts_its_own_ack_only_after_it() {
    let (mut d, l) = led_ensemble(Config::default());
    let now = d.now();
    let leader = d.node_mut(l);
    leader.propose(now, Bytes::from_static(b"a")).unwrap();
    // Take the proposal's Ready but do not report it durable yet: the PROPOSALs go out
    // before the leader's own log write is durable, as ZooKeeper's leader sends them.
    let r = leader.take_ready();
    let early: Vec<_> = r.early.iter().map(|e| e.to).collect();
    assert_eq!(
        early.len(),
        2,
        "one PROPOSAL per follower, early: {:?}",
        r.early
    );
    assert!(!r.persist.is_empty());
    // One follower acks: 1 of 3 without the leader's own ack.
    let id = if l == 1 { 2 } else { 1 };
    let conn = match &leader.role {
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
    leader.receive(now, id, msg);
    assert_eq!(leader.last_committed(), Zxid::default());
    // The leader's fsync completes: now 2 of 3.
    leader.persisted(now, Zxid::new(1, 1).position());
    assert_eq!(leader.last_committed(), Zxid::new(1, 1));
}

#[test]
fn the_counter_limit_forces_a_new_epoch() {
    let config = Config {
        counter_limit: 4,
        ..Config::default()
    };
    let (mut d, l) = led_ensemble(config);
    let now = d.now();
    for i in 1..=3 {
        d.node_mut(l)
            .propose(now, Bytes::from(format!("c{i}")))
            .unwrap();
    }
    d.pump();
    // Counter 4 would reach the limit: the leader gives up instead of proposing it.
    let e = d.node_mut(l).propose(now, Bytes::from_static(b"c4"));
    assert_eq!(e, Err(ProposeError::NotLeader { leader: None }));
    d.run_for(ms(3000));
    let l2 = d.leader().expect("re-elected");
    let now = d.now();
    let pos = d
        .node_mut(l2)
        .propose(now, Bytes::from_static(b"c4"))
        .unwrap();
    assert_eq!(
        pos,
        Zxid::new(2, 1).position(),
        "a new epoch, counter restarted"
    );
    d.pump();
    assert_eq!(d.node(l2).last_committed(), Zxid::new(2, 1));
}
