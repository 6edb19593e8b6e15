//! ZAB's messages: election notifications, and quorum packets on a leader-learner connection
//! (`Leader.FOLLOWERINFO`, `LEADERINFO`, ... in ZooKeeper).

use crate::election::Notification;
use crate::zxid::Zxid;
use consensus_core::{Payload, Snapshot};
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
    /// Synchronization by snapshot: replace everything with it; proposals follow.
    Snap {
        /// The leader's snapshot (empty data at zxid 0 means the empty state).
        snapshot: Snapshot,
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
}

impl Packet {
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
        }
    }
}
