//! Reads as ZooKeeper serves them. Every server answers reads from its own state at once
//! (the driver's [`consensus_core::ReadLevel::Local`]: a client never sees the state go back,
//! but may read stale data). Before such a read a client may call `sync`: the server asks the
//! leader, the leader answers on the same FIFO channel with its last proposal, and the read
//! waits until this server committed through it. That makes the read at least as new as every
//! write the leader had proposed when the SYNC reached it; it does not make it linearizable,
//! because the leader does not confirm that it still leads (a deposed leader that has not
//! noticed yet answers from its own history). ZAB has no leases: a lease read is a `sync`.

use crate::message::Packet;
use crate::replica::{FollowerPhase, ZabReplica, ZabRole};
use crate::zxid::Zxid;
use consensus_core::{NodeId, ProposeError, ReadLevel, ReadState};

impl ZabReplica {
    /// `read_index` of the `Replica` contract: a `sync`.
    pub(crate) fn request_sync(&mut self, id: u64, level: ReadLevel) -> Result<(), ProposeError> {
        if !matches!(level, ReadLevel::Index | ReadLevel::Lease) {
            return Err(ProposeError::Unsupported);
        }
        match &mut self.role {
            ZabRole::Leading(l) if l.established() => {
                let last_proposed = l.last_proposed;
                let at = self.sync_point(last_proposed);
                self.ready.reads.push(ReadState::at(id, at.position()));
                Ok(())
            }
            ZabRole::Following(f) if f.phase == FollowerPhase::Broadcast => {
                f.syncs.push(id);
                self.send_to_leader(Packet::Sync {
                    id,
                    zxid: Zxid::default(),
                });
                Ok(())
            }
            ZabRole::Following(f) => Err(ProposeError::NotLeader {
                leader: Some(f.leader),
            }),
            _ => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    /// What a read after a sync must wait for: the leader's last proposal, or, right after it
    /// established (its last proposal is the epoch marker), the history it committed then.
    fn sync_point(&self, last_proposed: Zxid) -> Zxid {
        if last_proposed.is_epoch_marker() {
            self.last_committed
        } else {
            last_proposed
        }
    }

    /// The leader's side of SYNC: answer with its last proposal, behind the proposals and
    /// commits already queued on the learner's channel.
    pub(crate) fn leader_sync(&mut self, from: NodeId, id: u64) {
        let ZabRole::Leading(l) = &self.role else {
            return;
        };
        if !l.established() || !l.handlers.get(&from).is_some_and(|h| h.forwarding()) {
            return;
        }
        let zxid = self.sync_point(l.last_proposed);
        self.send_to_learner(from, Packet::Sync { id, zxid });
    }

    /// The leader answered this follower's SYNC.
    pub(crate) fn follower_synced(&mut self, id: u64, zxid: Zxid) {
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        let Some(i) = f.syncs.iter().position(|&s| s == id) else {
            return;
        };
        f.syncs.swap_remove(i);
        self.ready.reads.push(ReadState::at(id, zxid.position()));
    }

    /// This server leaves its leader: reads waiting on a SYNC fail (the client asks again).
    pub(crate) fn fail_syncs(&mut self) {
        if let ZabRole::Following(f) = &mut self.role {
            for id in std::mem::take(&mut f.syncs) {
                self.ready.reads.push(ReadState::refused(id, None));
            }
        }
    }
}
