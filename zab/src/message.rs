//! ZAB's messages: election notifications, and quorum packets on a leader-learner connection
//! (`Leader.FOLLOWERINFO`, `LEADERINFO`, ... in ZooKeeper).

use crate::election::Notification;
use crate::zxid::Zxid;
use bytes::Bytes;
use consensus_core::{Payload, Position};
use serde::{Deserialize, Serialize};

/// Everything one ZAB server sends another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Fast Leader Election traffic (ZooKeeper's election connections).
    Notification(Notification),
    /// A packet on the connection between the leader and one learner. `conn` names the
    /// connection (the learner picks it when it connects); `seq` numbers the packets in each
    /// direction, so a gap (a connection that broke and came back) is noticed.
    Quorum {
        /// The connection.
        conn: u64,
        /// Position of this packet in its direction of the connection, from 0.
        seq: u64,
        /// The packet.
        packet: Packet,
    },
    /// Consecutive packets on one connection in one frame, numbered `seq`, `seq + 1`, ...:
    /// what ZooKeeper's buffered quorum stream puts in one write. Each packet is handled
    /// exactly as if it had come alone.
    QuorumBatch {
        /// The connection.
        conn: u64,
        /// Position of the first packet in its direction of the connection.
        seq: u64,
        /// The packets, in order.
        packets: Vec<Packet>,
    },
    /// Election traffic's companion: the sender's last committed configuration and the zxid
    /// of its reconfig (ZooKeeper puts it in the notification itself).
    Config {
        /// The zxid (as a position) of the reconfig transaction.
        at: consensus_core::Position,
        /// The configuration (boxed: it would otherwise make every message as large).
        members: Box<consensus_core::Membership>,
    },
}

/// Packs consecutive packets to the same peer on the same connection into one
/// [`Message::QuorumBatch`], keeping every peer's order; a lone packet stays a
/// [`Message::Quorum`]. Messages to different peers may change places (separate channels).
pub fn coalesce(
    messages: Vec<consensus_core::Envelope<Message>>,
    max_bytes: usize,
) -> Vec<consensus_core::Envelope<Message>> {
    use consensus_core::Envelope;
    if messages.len() < 2 {
        return messages;
    }
    let mut out: Vec<Envelope<Message>> = Vec::with_capacity(messages.len());
    // Per peer: the index in `out` of its open message and the payload bytes it holds (few
    // peers: a linear scan is fastest). A lone packet stays a `Quorum` until a second one
    // joins it, so most Readies allocate no batch at all.
    let mut open: Vec<(consensus_core::NodeId, usize, usize)> = Vec::new();
    for env in messages {
        let Message::Quorum { conn, seq, packet } = env.msg else {
            out.push(env);
            continue;
        };
        let weight = packet.payload_bytes();
        let slot = open.iter().position(|&(to, _, _)| to == env.to);
        if let Some(k) = slot {
            let (_, at, held) = &mut open[k];
            if *held + weight <= max_bytes {
                let msg = &mut out[*at].msg;
                match msg {
                    Message::QuorumBatch {
                        conn: c,
                        seq: s,
                        packets,
                    } if *c == conn && *s + packets.len() as u64 == seq => {
                        packets.push(packet);
                        *held += weight;
                        continue;
                    }
                    Message::Quorum {
                        conn: c, seq: s, ..
                    } if *c == conn && *s + 1 == seq => {
                        let batch = Message::QuorumBatch {
                            conn,
                            seq: *s,
                            packets: Vec::with_capacity(2),
                        };
                        let lone = std::mem::replace(msg, batch);
                        if let (
                            Message::Quorum { packet: first, .. },
                            Message::QuorumBatch { packets, .. },
                        ) = (lone, msg)
                        {
                            packets.extend([first, packet]);
                        }
                        *held += weight;
                        continue;
                    }
                    _ => {}
                }
            }
        }
        let at = out.len();
        match slot {
            Some(k) => open[k] = (env.to, at, weight),
            None => open.push((env.to, at, weight)),
        }
        out.push(Envelope {
            to: env.to,
            msg: Message::Quorum { conn, seq, packet },
        });
    }
    out
}

/// A quorum packet (`QuorumPacket` and its types in `Leader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packet {
    /// Learner to leader on connecting: its acceptedEpoch (CEPOCH).
    FollowerInfo {
        /// The learner's acceptedEpoch.
        accepted_epoch: u64,
    },
    /// Leader to learner: the epoch it proposes (NEWEPOCH).
    LeaderInfo {
        /// The new epoch.
        new_epoch: u64,
    },
    /// Learner to leader: epoch accepted (ACK-E), with the learner's history summary.
    AckEpoch {
        /// The learner's currentEpoch, or `None` (ZooKeeper's -1) if it had already accepted
        /// this epoch and must not be counted again.
        current_epoch: Option<u64>,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// Synchronization by difference: proposals follow.
    Diff {
        /// The leader's last committed zxid.
        zxid: Zxid,
    },
    /// Synchronization by truncation: drop everything after `zxid`; proposals may follow.
    Trunc {
        /// Where the learner's log must end.
        zxid: Zxid,
    },
    /// Synchronization by snapshot: replace everything with it; proposals follow. Sent in
    /// chunks, one packet each, back to back on the connection.
    Snap {
        /// The snapshot's position (zero with empty data: the empty state).
        last: Position,
        /// Byte offset of this chunk in the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// True for the last chunk.
        done: bool,
        /// On the last chunk, the configuration in force at `last`.
        members: Option<Box<consensus_core::Membership>>,
    },
    /// A transaction to log.
    Proposal {
        /// Its zxid.
        zxid: Zxid,
        /// The transaction.
        data: Payload,
    },
    /// The proposal `zxid` (and everything before it) is committed.
    Commit {
        /// The committed zxid.
        zxid: Zxid,
    },
    /// The leader of epoch `zxid.epoch()` is done sending the learner's history.
    NewLeader {
        /// The new epoch's marker `(epoch, 0)`.
        zxid: Zxid,
    },
    /// Learner to leader: a proposal (or NEWLEADER) is durably logged.
    Ack {
        /// What was logged.
        zxid: Zxid,
    },
    /// Leader to learner: a quorum is synchronized; start serving.
    UpToDate,
    /// Heartbeat, in both directions.
    Ping,
    /// ZooKeeper's `sync`, both ways: a follower asks (`zxid` unused) and the leader answers
    /// with the zxid its followers must have committed before they serve the read.
    Sync {
        /// The follower's id for the read.
        id: u64,
        /// The leader's answer: its last proposal.
        zxid: Zxid,
    },
    /// Leader to observer: a committed proposal with its data (`Leader.INFORM`); observers
    /// neither receive PROPOSALs nor ACK.
    Inform {
        /// The committed proposal's zxid.
        zxid: Zxid,
        /// The transaction.
        data: Payload,
    },
}

impl consensus_core::MessageName for Message {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Message::Notification(_) => "Notification".into(),
            Message::Config { .. } => "Configuration".into(),
            Message::Quorum { packet, .. } => packet.name().into(),
            Message::QuorumBatch { packets, .. } => {
                let names: Vec<&str> = packets.iter().map(Packet::name).collect();
                runs(&names).into()
            }
        }
    }

    fn only_for_reads(&self) -> bool {
        let sync = |p: &Packet| matches!(p, Packet::Sync { .. });
        match self {
            Message::Notification(_) | Message::Config { .. } => false,
            Message::Quorum { packet, .. } => sync(packet),
            // A frame that also carries proposals or commits would have been sent anyway.
            Message::QuorumBatch { packets, .. } => packets.iter().all(sync),
        }
    }
}

/// Packet names joined with `+`, a repeated run written once with its count:
/// `DIFF+(PROPOSAL+COMMIT)x51+NEWLEADER`.
fn runs(names: &[&str]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let mut best = (1, 1); // (unit length, repeats)
        for unit in 1..=2 {
            let mut k = 1;
            while i + (k + 1) * unit <= names.len()
                && names[i + k * unit..i + (k + 1) * unit] == names[i..i + unit]
            {
                k += 1;
            }
            if k > 1 && k * unit > best.0 * best.1 {
                best = (unit, k);
            }
        }
        let (unit, k) = best;
        let text = names[i..i + unit].join("+");
        out.push(match (unit, k) {
            (_, 1) => text,
            (1, k) => format!("{text}x{k}"),
            (_, k) => format!("({text})x{k}"),
        });
        i += unit * k;
    }
    out.join("+")
}

impl Packet {
    /// The application bytes the packet carries (a proposal's command, a SNAP chunk).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Packet::Proposal {
                data: Payload::Command(c),
                ..
            } => c.len(),
            Packet::Inform {
                data: Payload::Command(c),
                ..
            } => c.len(),
            Packet::Snap { data, .. } => data.len(),
            _ => 0,
        }
    }

    /// ZooKeeper's name for the packet type.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::FollowerInfo { .. } => "FOLLOWERINFO",
            Packet::LeaderInfo { .. } => "LEADERINFO",
            Packet::AckEpoch { .. } => "ACKEPOCH",
            Packet::Diff { .. } => "DIFF",
            Packet::Trunc { .. } => "TRUNC",
            Packet::Snap { .. } => "SNAP",
            Packet::Proposal { .. } => "PROPOSAL",
            Packet::Commit { .. } => "COMMIT",
            Packet::NewLeader { .. } => "NEWLEADER",
            Packet::Ack { .. } => "ACK",
            Packet::UpToDate => "UPTODATE",
            Packet::Ping => "PING",
            Packet::Sync { .. } => "SYNC",
            Packet::Inform { .. } => "INFORM",
        }
    }
}

#[cfg(test)]
mod coalesce_tests {
    use super::*;

    #[test]
    fn a_frame_names_repeated_packets_once_with_their_count() {
        let names = [
            "DIFF",
            "PROPOSAL",
            "COMMIT",
            "PROPOSAL",
            "COMMIT",
            "NEWLEADER",
        ];
        assert_eq!(runs(&names), "DIFF+(PROPOSAL+COMMIT)x2+NEWLEADER");
        assert_eq!(runs(&["ACK", "ACK", "ACK"]), "ACKx3");
        assert_eq!(runs(&["PROPOSAL", "COMMIT"]), "PROPOSAL+COMMIT");
    }
    use consensus_core::Envelope;

    fn q(to: u64, conn: u64, seq: u64) -> Envelope<Message> {
        Envelope {
            to,
            msg: Message::Quorum {
                conn,
                seq,
                packet: Packet::LeaderInfo { new_epoch: seq },
            },
        }
    }

    fn shape(m: &[Envelope<Message>]) -> Vec<(u64, u64, Vec<u64>)> {
        m.iter()
            .map(|e| match &e.msg {
                Message::Quorum { seq, .. } => (e.to, *seq, vec![*seq]),
                Message::QuorumBatch { seq, packets, .. } => (
                    e.to,
                    *seq,
                    packets
                        .iter()
                        .map(|p| match p {
                            Packet::LeaderInfo { new_epoch } => *new_epoch,
                            _ => unreachable!(),
                        })
                        .collect(),
                ),
                Message::Notification(_) | Message::Config { .. } => (e.to, u64::MAX, vec![]),
            })
            .collect()
    }

    #[test]
    fn consecutive_packets_to_a_peer_share_one_frame_in_order() {
        let out = coalesce(
            vec![q(1, 7, 0), q(2, 9, 4), q(1, 7, 1), q(2, 9, 5), q(1, 7, 2)],
            usize::MAX,
        );
        assert_eq!(shape(&out), vec![(1, 0, vec![0, 1, 2]), (2, 4, vec![4, 5])]);
    }

    #[test]
    fn a_new_connection_or_a_gap_starts_a_new_frame_and_lone_packets_stay_plain() {
        let out = coalesce(vec![q(1, 7, 0), q(1, 8, 0), q(1, 8, 2)], usize::MAX);
        assert_eq!(
            shape(&out),
            vec![(1, 0, vec![0]), (1, 0, vec![0]), (1, 2, vec![2])]
        );
        assert!(out.iter().all(|e| matches!(e.msg, Message::Quorum { .. })));
    }
}
