//! Discovery (`Leader.getEpochToPropose`, `waitForEpochAck`; `Learner.registerWithLeader`):
//! the new epoch is 1 + the highest acceptedEpoch of a quorum that includes the leader.

use crate::message::Packet;
use crate::replica::{
    Conn, FollowerPhase, HandlerState, HardState, LeaderPhase, LearnerHandler, ZabReplica, ZabRole,
};
use crate::zxid::Zxid;
use consensus_core::NodeId;

impl ZabReplica {
    /// Routes a packet from a learner to the leader's handler for it.
    pub(crate) fn leader_packet(&mut self, from: NodeId, packet: Packet) {
        match packet {
            Packet::AckEpoch {
                current_epoch,
                last_zxid,
            } => self.on_ack_epoch(from, current_epoch, last_zxid),
            Packet::Ack { zxid } if zxid.is_epoch_marker() => self.on_newleader_ack(from, zxid),
            Packet::Ack { zxid } => self.on_proposal_ack(from, zxid),
            Packet::Sync { id, .. } => self.leader_sync(from, id),
            // Pings only keep the learner alive (last_heard was updated on arrival).
            _ => {}
        }
    }

    /// Routes a packet from the leader to this follower's phase.
    pub(crate) fn follower_packet(&mut self, packet: Packet) {
        let ZabRole::Following(f) = &self.role else {
            return;
        };
        let phase = f.phase;
        match (phase, packet) {
            (_, Packet::Ping) => self.send_to_leader(Packet::Ping),
            (FollowerPhase::Discovery, Packet::LeaderInfo { new_epoch }) => {
                self.on_leader_info(new_epoch)
            }
            (FollowerPhase::Synchronization, p) => self.sync_packet(p),
            (FollowerPhase::Broadcast, Packet::Proposal { zxid, data }) => {
                self.follower_proposal(zxid, data)
            }
            (FollowerPhase::Broadcast, Packet::Commit { zxid }) => self.follower_commit(zxid),
            (FollowerPhase::Broadcast, Packet::Inform { zxid, data }) => {
                self.follower_inform(zxid, data)
            }
            (FollowerPhase::Broadcast, Packet::Sync { id, zxid }) => self.follower_synced(id, zxid),
            // Anything else is out of place for this phase: the connection is not usable.
            _ => self.go_looking(),
        }
    }

    /// A learner connected (FOLLOWERINFO): (re)open its handler and offer the epoch if known.
    pub(crate) fn learner_connected(&mut self, from: NodeId, conn: u64, accepted_epoch: u64) {
        let now = self.now;
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let mut c = Conn::new(conn);
        c.recv_seq = 1; // FOLLOWERINFO was packet 0
        l.handlers.insert(
            from,
            LearnerHandler {
                conn: c,
                state: HandlerState::Connected,
                accepted_epoch,
                last_heard: now,
                proposed_from: None,
            },
        );
        // An epoch acknowledgement stands across a reconnect, as in ZooKeeper: the learner's
        // acceptedEpoch is durable, and on reconnecting it answers LEADERINFO with -1 ("already
        // counted"), so dropping its earlier ack would leave it uncountable for good.
        l.newleader_acks.remove(&from);
        match l.epoch() {
            Some(e) if accepted_epoch > e => {
                // The learner promised a newer epoch than ours (a would-be leader that never
                // established): it will refuse this one forever. Deviation from ZooKeeper,
                // which loops here: adopt the promise and start over, so that the next epoch
                // is above it. Raising one's own acceptedEpoch only narrows what this server
                // will accept, so it never weakens a promise (docs/zab.md).
                let hard = HardState {
                    accepted_epoch: accepted_epoch.max(self.hard.accepted_epoch),
                    ..self.hard.clone()
                };
                self.set_hard(hard);
                self.go_looking();
            }
            Some(e) => {
                l.handlers.get_mut(&from).expect("inserted").state = HandlerState::EpochSent;
                self.send_to_learner(from, Packet::LeaderInfo { new_epoch: e });
            }
            None => self.maybe_fix_epoch(),
        }
    }

    /// Once a quorum (the leader included) has connected, fixes the new epoch, persists it as
    /// acceptedEpoch, then offers it to every connected learner.
    pub(crate) fn maybe_fix_epoch(&mut self) {
        let own = self.hard.accepted_epoch;
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let connected = std::iter::once(self.id).chain(l.handlers.keys().copied());
        if l.epoch().is_some() || !self.quorum.is_reached(connected) {
            return;
        }
        let max = l
            .handlers
            .values()
            .map(|h| h.accepted_epoch)
            .chain(std::iter::once(own))
            .max()
            .unwrap_or(own);
        let e = max + 1;
        l.phase = LeaderPhase::EpochProposed(e);
        let peers: Vec<NodeId> = l.handlers.keys().copied().collect();
        for h in l.handlers.values_mut() {
            h.state = HandlerState::EpochSent;
        }
        // acceptedEpoch is durable before LEADERINFO leaves (same Ready, persist first).
        let hard = HardState {
            accepted_epoch: e,
            ..self.hard.clone()
        };
        self.set_hard(hard);
        for p in peers {
            self.send_to_learner(p, Packet::LeaderInfo { new_epoch: e });
        }
        self.maybe_settle_epoch();
    }

    /// The leader's side of ACKEPOCH.
    fn on_ack_epoch(&mut self, from: NodeId, current_epoch: Option<u64>, last_zxid: Zxid) {
        let mine = (self.hard.current_epoch, self.log.last_zxid());
        let ZabRole::Leading(l) = &mut self.role else {
            return;
        };
        let Some(h) = l.handlers.get_mut(&from) else {
            return;
        };
        if h.state != HandlerState::EpochSent {
            return;
        }
        h.state = HandlerState::AckedEpoch { last_zxid };
        if let Some(ce) = current_epoch {
            // ZooKeeper never copies history from a follower: a follower ahead means this
            // server should not lead.
            if (ce, last_zxid) > mine {
                self.go_looking();
                return;
            }
            l.epoch_acks.insert(from);
        }
        if l.epoch_settled() {
            self.sync_learner(from);
        } else {
            self.maybe_settle_epoch();
        }
    }

    /// The follower's side of LEADERINFO.
    fn on_leader_info(&mut self, new_epoch: u64) {
        let accepted = self.hard.accepted_epoch;
        let current_epoch = if new_epoch > accepted {
            let hard = HardState {
                accepted_epoch: new_epoch,
                ..self.hard.clone()
            };
            self.set_hard(hard);
            Some(self.hard.current_epoch)
        } else if new_epoch == accepted {
            None
        } else {
            // A leader of an older epoch than we promised: not ours to follow.
            self.go_looking();
            return;
        };
        if let ZabRole::Following(f) = &mut self.role {
            f.new_epoch = new_epoch;
            f.phase = FollowerPhase::Synchronization;
        }
        let last_zxid = self.log.last_zxid();
        self.send_to_leader(Packet::AckEpoch {
            current_epoch,
            last_zxid,
        });
    }
}
