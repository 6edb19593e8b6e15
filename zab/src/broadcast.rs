//! The leader's side of broadcast: outstanding proposals, their acknowledgements, and the
//! strictly ordered commit (`Leader.propose`, `processAck`, `tryToCommit`).

use crate::zxid::Zxid;
use consensus_core::{NodeId, Quorum};
use std::collections::VecDeque;

/// Server ids of an ensemble are below this (acknowledgements are kept as a bit set by id).
pub const MAX_SERVER_ID: NodeId = 128;

/// Proposals of the current epoch that are not yet committed, with who acknowledged each.
#[derive(Clone, Debug)]
pub struct Outstanding {
    /// Each voter set whose majority a commit needs (two while a reconfiguration is
    /// proposed): the bits of its voters, and how many make a majority.
    majorities: Vec<(u128, usize)>,
    /// Proposals in zxid order, each with the set of servers (bit = id) that acknowledged it.
    proposals: VecDeque<(Zxid, u128)>,
    last_committed: Zxid,
}

impl Outstanding {
    /// A tracker for proposals that commit on `quorum` (server ids below [`MAX_SERVER_ID`]),
    /// starting after `last_committed`.
    pub fn new(quorum: &Quorum, last_committed: Zxid) -> Self {
        let mut o = Outstanding {
            majorities: Vec::new(),
            proposals: VecDeque::new(),
            last_committed,
        };
        o.set_quorum(quorum);
        o
    }

    /// Counts from now on in `quorum` (a reconfiguration was proposed or committed); returns
    /// the proposals that are now committed, in order.
    pub fn set_quorum(&mut self, quorum: &Quorum) -> Vec<Zxid> {
        self.majorities = quorum
            .majorities()
            .map(|m| {
                let mask = m
                    .voters()
                    .iter()
                    .filter(|&&id| id < MAX_SERVER_ID)
                    .fold(0u128, |acc, &id| acc | 1u128 << id);
                (mask, m.size())
            })
            .collect();
        self.commit_ready()
    }

    /// The last zxid committed.
    pub fn last_committed(&self) -> Zxid {
        self.last_committed
    }

    /// Number of proposals waiting for a quorum.
    pub fn len(&self) -> usize {
        self.proposals.len()
    }

    /// True when nothing waits for a quorum.
    pub fn is_empty(&self) -> bool {
        self.proposals.is_empty()
    }

    /// Registers a new proposal; zxids must be proposed in increasing order.
    pub fn propose(&mut self, zxid: Zxid) {
        debug_assert!(self.proposals.back().is_none_or(|&(z, _)| z < zxid));
        debug_assert!(zxid > self.last_committed);
        self.proposals.push_back((zxid, 0));
    }

    /// Acknowledges, for `from`, every outstanding proposal up to `through`.
    pub fn ack_through(&mut self, from: NodeId, through: Zxid) -> Vec<Zxid> {
        let Some(bit) = self.bit(from) else {
            return Vec::new();
        };
        for (z, acks) in self.proposals.iter_mut() {
            if *z > through {
                break;
            }
            *acks |= bit;
        }
        self.commit_ready()
    }

    fn bit(&self, id: NodeId) -> Option<u128> {
        (id < MAX_SERVER_ID).then(|| 1u128 << id)
    }

    /// Pops, in order, the proposals at the head that a quorum acknowledged.
    fn commit_ready(&mut self) -> Vec<Zxid> {
        let mut committed = Vec::new();
        while let Some(&(z, acks)) = self.proposals.front() {
            // The bits are distinct servers: count those of each voter set.
            let reached = self
                .majorities
                .iter()
                .all(|&(mask, size)| (acks & mask).count_ones() as usize >= size);
            if !reached {
                break;
            }
            self.proposals.pop_front();
            self.last_committed = z;
            committed.push(z);
        }
        committed
    }

    /// Records that `from` logged `zxid` durably (the leader itself included, after its own
    /// fsync), and returns the zxids that are now committed, in order.
    ///
    /// Acks for an epoch marker (counter 0), for committed or unknown zxids are ignored. A
    /// proposal commits only once a quorum acked it and every earlier proposal committed.
    pub fn ack(&mut self, from: NodeId, zxid: Zxid) -> Vec<Zxid> {
        if zxid.is_epoch_marker() || zxid <= self.last_committed {
            return Vec::new();
        }
        let Some(bit) = self.bit(from) else {
            return Vec::new();
        };
        // Outstanding proposals are consecutive zxids of one epoch: index by counter.
        let Some(&(first, _)) = self.proposals.front() else {
            return Vec::new();
        };
        if zxid.epoch() != first.epoch() || zxid.counter() < first.counter() {
            return Vec::new();
        }
        let i = (zxid.counter() - first.counter()) as usize;
        match self.proposals.get_mut(i) {
            Some((z, acks)) if *z == zxid => *acks |= bit,
            _ => return Vec::new(),
        }
        self.commit_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(c: u32) -> Zxid {
        Zxid::new(2, c)
    }

    #[test]
    fn a_proposal_commits_once_a_quorum_acked_it() {
        let mut o = Outstanding::new(&Quorum::majority(&[1, 2, 3, 4, 5]), Zxid::epoch_marker(2));
        o.propose(z(1));
        assert!(o.ack(1, z(1)).is_empty());
        assert!(o.ack(2, z(1)).is_empty());
        assert!(o.ack(2, z(1)).is_empty(), "a repeated ack counts once");
        assert_eq!(o.ack(3, z(1)), vec![z(1)]);
        assert_eq!(o.last_committed(), z(1));
        assert!(o.is_empty());
    }

    #[test]
    fn commits_happen_strictly_in_zxid_order() {
        let mut o = Outstanding::new(&Quorum::majority(&[1, 2, 3]), Zxid::epoch_marker(2));
        o.propose(z(1));
        o.propose(z(2));
        // z(2) reaches a quorum first but must wait for z(1).
        o.ack(1, z(2));
        assert!(o.ack(2, z(2)).is_empty());
        assert_eq!(o.len(), 2);
        o.ack(1, z(1));
        assert_eq!(o.ack(3, z(1)), vec![z(1), z(2)]);
    }

    #[test]
    fn the_leader_counts_only_after_it_reports_its_own_persist() {
        let mut o = Outstanding::new(&Quorum::majority(&[1, 2, 3]), Zxid::epoch_marker(2));
        o.propose(z(1));
        // One follower acked; the leader's own write is still in flight: no quorum yet.
        assert!(o.ack(2, z(1)).is_empty());
        // The leader's driver reports the fsync: now 2 of 3.
        assert_eq!(o.ack(1, z(1)), vec![z(1)]);
    }

    #[test]
    fn acks_for_epoch_markers_committed_or_unknown_zxids_are_ignored() {
        let mut o = Outstanding::new(&Quorum::majority(&[1, 2, 3]), Zxid::epoch_marker(2));
        o.propose(z(1));
        assert!(o.ack(1, Zxid::epoch_marker(2)).is_empty());
        assert!(o.ack(1, z(9)).is_empty());
        o.ack(1, z(1));
        o.ack(2, z(1));
        assert!(o.ack(3, z(1)).is_empty(), "already committed");
        assert_eq!(o.last_committed(), z(1));
    }
}

mod exchange {
    //! PROPOSAL / ACK / COMMIT on both sides of a learner connection.

    use crate::message::Packet;
    use crate::replica::{ZabReplica, ZabRole};
    use crate::zxid::Zxid;
    use consensus_core::{Entry, NodeId, Payload, Position, ProposeError};

    impl ZabReplica {
        /// `Leader.propose`: the next zxid of the epoch, logged, then sent to every learner.
        pub(crate) fn leader_propose(
            &mut self,
            payload: Payload,
        ) -> Result<Position, ProposeError> {
            let limit = self.config.counter_limit;
            if !self.is_established_leader() {
                return Err(self.not_leader());
            }
            let ZabRole::Leading(l) = &mut self.role else {
                return Err(self.not_leader());
            };
            let Some(zxid) = l.last_proposed.next_in_epoch(limit) else {
                // ZOOKEEPER-1277: the counter is exhausted; step down so a new epoch starts.
                self.go_looking();
                return Err(ProposeError::NotLeader { leader: None });
            };
            l.last_proposed = zxid;
            l.outstanding.propose(zxid);
            let entry = Entry {
                pos: zxid.position(),
                payload,
            };
            self.log_entries(vec![entry.clone()]);
            for p in self.forwarding_learners() {
                if self.proposes_to(p) {
                    self.broadcast_to_learner(
                        p,
                        Packet::Proposal {
                            zxid,
                            data: entry.payload.clone(),
                        },
                    );
                }
            }
            Ok(zxid.position())
        }

        /// The leader's own ACK, once its driver reports the fsync.
        pub(crate) fn leader_self_ack(&mut self, through: Zxid) {
            let id = self.id;
            let ZabRole::Leading(l) = &mut self.role else {
                return;
            };
            if !l.established() {
                return;
            }
            let committed = l.outstanding.ack_through(id, through);
            self.commit(committed);
        }

        /// A learner's ACK of a proposal.
        pub(crate) fn on_proposal_ack(&mut self, from: NodeId, zxid: Zxid) {
            let ZabRole::Leading(l) = &mut self.role else {
                return;
            };
            if !l.established() {
                return;
            }
            let committed = l.outstanding.ack(from, zxid);
            self.commit(committed);
        }

        /// Commits `zxids` (in order): the commit point moves, learners hear COMMIT or INFORM.
        pub(crate) fn commit(&mut self, zxids: Vec<Zxid>) {
            let Some(&last) = zxids.last() else {
                return;
            };
            let before = self.last_committed;
            self.last_committed = self.last_committed.max(last);
            let peers = self.forwarding_learners();
            for z in zxids {
                for &p in &peers {
                    let packet = match self.informed(p, z) {
                        Some(data) => Packet::Inform { zxid: z, data },
                        None => Packet::Commit { zxid: z },
                    };
                    self.broadcast_to_learner(p, packet);
                }
            }
            self.commit_moved(before);
        }

        /// `Follower.processPacket` PROPOSAL: log it, then ACK (after the fsync).
        pub(crate) fn follower_proposal(&mut self, zxid: Zxid, data: Payload) {
            if zxid.position() <= self.log.last_position() {
                return;
            }
            self.log_entries(vec![Entry {
                pos: zxid.position(),
                payload: data,
            }]);
            if let ZabRole::Following(f) = &mut self.role {
                f.pending.push_back(zxid);
            }
            self.send_to_leader(Packet::Ack { zxid });
        }

        /// `Follower.processPacket` COMMIT: it must match the oldest pending proposal; a
        /// mismatch means this follower cannot stay in the ensemble.
        pub(crate) fn follower_commit(&mut self, zxid: Zxid) {
            let ZabRole::Following(f) = &mut self.role else {
                return;
            };
            if f.pending.front() == Some(&zxid) {
                f.pending.pop_front();
                let before = self.last_committed;
                self.last_committed = self.last_committed.max(zxid);
                self.commit_moved(before);
            } else {
                self.go_looking();
            }
        }
    }
}
