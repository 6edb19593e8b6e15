//! Unit tests of the ZAB core: each drives servers by hand and checks one rule, one file per
//! phase; the helpers they share are here.

mod broadcast;
mod discovery;
mod liveness;
mod membership;
mod read;
mod synchronization;

use crate::election::ServerState;
use crate::message::{Message, Packet};
use crate::replica::{Config, Conn, HardState, ZabReplica, ZabRole};
use crate::zxid::Zxid;
use bytes::Bytes;
use consensus_core::{Direct, Entry, NodeId, PersistOp, ProposeError, Ready, Recovered, Replica};
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
        config: None,
    }
}

/// The quorum packets in a Ready, with their receivers.
fn packets(r: &Ready<Message, HardState>) -> Vec<(NodeId, Packet)> {
    r.all_messages()
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
    let mut f = server(2, 3, hard.clone(), log);
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

/// A 3-server ensemble on the in-memory driver, run until it has an established leader.
fn led_ensemble(config: Config) -> (Direct<ZabReplica>, NodeId) {
    let voters: Vec<NodeId> = vec![1, 2, 3];
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
    let mut d = Direct::new(nodes);
    d.run_for(ms(1000));
    let l = d.leader().expect("a leader");
    (d, l)
}
