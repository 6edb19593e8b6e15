//! The state a server keeps in each role: the leader's learner handlers and phase, the
//! follower's phase and synchronization buffers, and the numbered connection between them.

use crate::broadcast::Outstanding;
use crate::message::{Message, Packet};
use crate::zxid::Zxid;
use consensus_core::{NodeId, Time};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One direction-numbered connection between the leader and a learner.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub id: u64,
    pub send_seq: u64,
    pub recv_seq: u64,
}

/// What a packet's sequence number says about the connection.
pub(crate) enum Arrival {
    /// The next packet: handle it.
    InOrder,
    /// Seen before: ignore it.
    Duplicate,
    /// Packets went missing: the connection broke.
    Gap,
}

impl Conn {
    pub fn new(id: u64) -> Self {
        Conn {
            id,
            send_seq: 0,
            recv_seq: 0,
        }
    }

    /// Wraps `packet` as the next message on this connection.
    pub fn packet(&mut self, packet: Packet) -> Message {
        let seq = self.send_seq;
        self.send_seq += 1;
        Message::Quorum {
            conn: self.id,
            seq,
            packet,
        }
    }

    pub fn arrive(&mut self, seq: u64) -> Arrival {
        if seq == self.recv_seq {
            self.recv_seq += 1;
            Arrival::InOrder
        } else if seq < self.recv_seq {
            Arrival::Duplicate
        } else {
            Arrival::Gap
        }
    }
}

/// Where a learner stands with the leader (`LearnerHandler`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HandlerState {
    /// FOLLOWERINFO received; no epoch to offer yet.
    Connected,
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH received; waiting for the leader's epoch to be settled by a quorum.
    AckedEpoch { last_zxid: Zxid },
    /// History and NEWLEADER sent; proposals are forwarded.
    Syncing,
    /// NEWLEADER acknowledged.
    Synced,
}

#[derive(Clone, Debug)]
pub(crate) struct LearnerHandler {
    pub conn: Conn,
    pub state: HandlerState,
    pub accepted_epoch: u64,
    pub last_heard: Time,
    /// A voter: PROPOSALs reach it from this zxid on, and their COMMITs follow. `None` for
    /// an observer, which gets each committed proposal as one INFORM.
    pub proposed_from: Option<Zxid>,
}

impl LearnerHandler {
    /// Receives the proposals and commits the leader broadcasts.
    pub fn forwarding(&self) -> bool {
        matches!(self.state, HandlerState::Syncing | HandlerState::Synced)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Leading {
    /// How far the leader has come: discovery, synchronization or broadcast.
    pub phase: LeaderPhase,
    pub handlers: BTreeMap<NodeId, LearnerHandler>,
    pub epoch_acks: BTreeSet<NodeId>,
    pub newleader_acks: BTreeSet<NodeId>,
    pub outstanding: Outstanding,
    pub last_proposed: Zxid,
    pub init_deadline: Time,
    pub next_ping: Time,
}

impl Leading {
    /// The new epoch, once a quorum's acceptedEpochs fixed it.
    pub fn epoch(&self) -> Option<u64> {
        match self.phase {
            LeaderPhase::Discovery => None,
            LeaderPhase::EpochProposed(e)
            | LeaderPhase::Synchronization(e)
            | LeaderPhase::Broadcast(e) => Some(e),
        }
    }

    /// currentEpoch = epoch is persisted: a quorum acknowledged the epoch.
    pub fn epoch_settled(&self) -> bool {
        matches!(
            self.phase,
            LeaderPhase::Synchronization(_) | LeaderPhase::Broadcast(_)
        )
    }

    /// A quorum acknowledged NEWLEADER: the leader serves.
    pub fn established(&self) -> bool {
        matches!(self.phase, LeaderPhase::Broadcast(_))
    }
}

/// A leader's phase (the paper's phases, as ZooKeeper's `Leader.lead` runs them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaderPhase {
    /// Gathering FOLLOWERINFO until a quorum's acceptedEpochs fix the new epoch.
    Discovery,
    /// The new epoch is offered (LEADERINFO); waiting for a quorum of ACKEPOCH.
    EpochProposed(u64),
    /// currentEpoch is persisted; learners are synchronized until a quorum acknowledges
    /// NEWLEADER.
    Synchronization(u64),
    /// Established: proposals are broadcast.
    Broadcast(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FollowerPhase {
    Discovery,
    Synchronization,
    Broadcast,
}

#[derive(Clone, Debug)]
pub(crate) struct Following {
    pub leader: NodeId,
    pub conn: Conn,
    pub phase: FollowerPhase,
    pub new_epoch: u64,
    pub last_heard: Time,
    /// Proposals received during synchronization and not yet committed.
    pub not_committed: VecDeque<consensus_core::Entry>,
    /// Proposals committed during synchronization, logged at NEWLEADER.
    pub committed_in_sync: Vec<consensus_core::Entry>,
    /// Logged proposals waiting for their COMMIT, in order.
    pub pending: VecDeque<Zxid>,
    /// How far the history synchronized so far is the leader's committed history (DIFF's,
    /// TRUNC's or SNAP's zxid, then each COMMIT during sync). It becomes this follower's
    /// commit point only at UPTODATE, once the leader is established: a leader that never
    /// reaches its NEWLEADER quorum commits nothing, and a later epoch may drop that history.
    pub sync_committed: Zxid,
    /// When to connect again if the leader has not answered yet.
    pub retry_at: Time,
    /// Reads waiting for the leader's answer to their SYNC.
    pub syncs: Vec<u64>,
}

#[derive(Clone, Debug)]
pub(crate) enum ZabRole {
    Looking,
    Following(Box<Following>),
    Leading(Box<Leading>),
}
