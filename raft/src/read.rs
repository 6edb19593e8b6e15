//! Reads without the log (the dissertation, section 6.4): ReadIndex, with a round of
//! heartbeats that confirms the leader still leads, and lease reads, which skip the round
//! while the leader's lease holds (section 6.4.1). A follower asks the leader for the index.
//!
//! A read index is the leader's commit point when the read arrives. It is safe to serve a
//! read once the state machine has applied through it, provided the leader had committed an
//! entry of its own term by then (so its commit point is the cluster's) and a majority
//! acknowledged a round started after the read arrived (so nobody else led in between).
//!
//! The lease: a majority acknowledged a round sent at time `t`; each of them ignores vote
//! requests until `election_timeout_min` after it heard the round (check-quorum's leader
//! stickiness), so no other leader can exist before `t + election_timeout_min` by their
//! clocks. The leader serves lease reads until `t + election_timeout_min - lease_clock_drift`
//! by its own clock; the subtraction covers clocks that run at different rates. A node that
//! restarts forgets whom it heard from, so with lease reads on it also refuses votes for
//! `election_timeout_min` after it starts.

use crate::{Message, RaftReplica, RaftRole};
use consensus_core::{NodeId, Position, ProposeError, ReadLevel, ReadState, Time};
use std::collections::BTreeMap;

/// A read waiting for its index to be confirmed.
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    /// The driver's id (of this node's driver, or of the follower that asked).
    id: u64,
    /// The follower that asked for the index, if not this node's own driver.
    origin: Option<NodeId>,
    /// The commit index when the read arrived.
    index: u64,
    /// The confirming round (0: not yet started).
    round: u64,
}

/// The leader's and followers' bookkeeping of reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reads {
    /// The last confirming round started.
    round: u64,
    /// Rounds in flight: when each was sent, and who acknowledged it.
    rounds: BTreeMap<u64, (Time, Vec<NodeId>)>,
    pending: Vec<PendingRead>,
    /// Until when the leader's lease lets it answer lease reads without a round.
    lease_until: Option<Time>,
    /// Reads this follower forwarded to the leader.
    forwarded: Vec<u64>,
}

impl RaftReplica {
    /// The read-index request of [`consensus_core::Replica::read_index`].
    pub(crate) fn request_read(&mut self, id: u64, level: ReadLevel) -> Result<(), ProposeError> {
        if !matches!(level, ReadLevel::Index | ReadLevel::Lease) {
            return Err(ProposeError::Unsupported);
        }
        match self.role {
            RaftRole::Leader => {
                let lease = level == ReadLevel::Lease && self.config.lease_reads;
                self.leader_read(id, None, lease);
                Ok(())
            }
            _ => match self.leader_id {
                Some(leader) => {
                    self.reads.forwarded.push(id);
                    let term = self.hard.current_term;
                    self.send(
                        leader,
                        Message::ReadIndex {
                            term,
                            id,
                            lease: level == ReadLevel::Lease,
                        },
                    );
                    Ok(())
                }
                None => Err(ProposeError::NotLeader { leader: None }),
            },
        }
    }

    /// A read at the leader, from its own driver or from a follower.
    pub(crate) fn leader_read(&mut self, id: u64, origin: Option<NodeId>, lease: bool) {
        let read = PendingRead {
            id,
            origin,
            index: self.commit_index,
            round: 0,
        };
        if lease && self.own_term_committed() && self.lease_valid() {
            self.answer_read(read);
            return;
        }
        // The round starts when the driver takes the next Ready: every read that arrived
        // since shares it.
        self.reads.pending.push(read);
    }

    /// True when reads wait for a round that can start now (for `has_ready`).
    pub(crate) fn reads_need_round(&self) -> bool {
        self.role == RaftRole::Leader
            && self.reads.pending.iter().any(|r| r.round == 0)
            && self.own_term_committed()
    }

    fn lease_valid(&self) -> bool {
        self.reads.lease_until.is_some_and(|t| self.now < t)
    }

    /// True once the leader committed an entry of its term: only then is its commit point
    /// the cluster's (section 6.4, step 1).
    fn own_term_committed(&self) -> bool {
        self.log.term_at(self.commit_index) == Some(self.hard.current_term)
    }

    /// Starts one confirming round for every pending read without one, once the leader's
    /// commit point is its own term's (reads that arrive before wait for the no-op).
    pub(crate) fn broadcast_pending_reads(&mut self) {
        if self.reads.pending.is_empty()
            || self.role != RaftRole::Leader
            || !self.own_term_committed()
        {
            return;
        }
        // A read that arrived before the no-op committed takes the commit point of now.
        let commit = self.commit_index;
        let mut new_round = false;
        for r in self.reads.pending.iter_mut().filter(|r| r.round == 0) {
            r.index = r.index.max(commit);
            r.round = self.reads.round + 1;
            new_round = true;
        }
        if !new_round {
            return;
        }
        self.reads.round += 1;
        let round = self.reads.round;
        self.reads.rounds.insert(round, (self.now, vec![self.id]));
        let term = self.hard.current_term;
        let peers: Vec<NodeId> = self.peers().collect();
        for p in peers {
            self.send(p, Message::ReadProbe { term, round });
        }
        self.finish_rounds(); // a single-node cluster confirms at once
    }

    /// A follower acknowledged round `round`.
    pub(crate) fn handle_read_probe_response(&mut self, from: NodeId, round: u64) {
        if self.role != RaftRole::Leader {
            return;
        }
        if let Some((_, acks)) = self.reads.rounds.get_mut(&round) {
            if !acks.contains(&from) {
                acks.push(from);
            }
        }
        self.finish_rounds();
    }

    /// Answers every read whose round a majority confirmed, and extends the lease.
    fn finish_rounds(&mut self) {
        let confirmed = self
            .reads
            .rounds
            .iter()
            .rev()
            .find(|(_, (_, acks))| self.quorum.is_reached(acks.iter().copied()))
            .map(|(&r, &(sent, _))| (r, sent));
        let Some((round, sent)) = confirmed else {
            return;
        };
        self.reads.rounds.retain(|&r, _| r > round);
        if self.config.lease_reads {
            let until = (sent + self.config.election_timeout_min)
                .saturating_sub(self.config.lease_clock_drift);
            self.reads.lease_until = Some(self.reads.lease_until.map_or(until, |u| u.max(until)));
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads.pending)
            .into_iter()
            .partition(|r| r.round != 0 && r.round <= round);
        self.reads.pending = waiting;
        for r in done {
            self.answer_read(r);
        }
    }

    fn answer_read(&mut self, r: PendingRead) {
        let at = self
            .log
            .position_at(r.index)
            .unwrap_or(Position::new(0, r.index));
        match r.origin {
            None => self.ready.reads.push(ReadState {
                id: r.id,
                at: Ok(at),
            }),
            Some(peer) => {
                let term = self.hard.current_term;
                self.send(
                    peer,
                    Message::ReadIndexResponse {
                        term,
                        id: r.id,
                        index: Some((at.era, at.seq)),
                    },
                );
            }
        }
    }

    /// The leader's answer to a read this follower forwarded.
    pub(crate) fn handle_read_index_response(&mut self, id: u64, index: Option<(u64, u64)>) {
        let Some(i) = self.reads.forwarded.iter().position(|&f| f == id) else {
            return;
        };
        self.reads.forwarded.swap_remove(i);
        let at = match index {
            Some((term, index)) => Ok(Position::new(term, index)),
            None => Err(ProposeError::NotLeader {
                leader: self.leader_id,
            }),
        };
        self.ready.reads.push(ReadState { id, at });
    }

    /// This node stopped leading or following its leader: every read it holds fails (the
    /// client asks again, wherever the leader now is).
    pub(crate) fn fail_reads(&mut self) {
        let leader = self.leader_id.filter(|&l| l != self.id);
        let term = self.hard.current_term;
        for r in std::mem::take(&mut self.reads.pending) {
            match r.origin {
                None => self.ready.reads.push(ReadState::refused(r.id, leader)),
                Some(peer) => self.send(
                    peer,
                    Message::ReadIndexResponse {
                        term,
                        id: r.id,
                        index: None,
                    },
                ),
            }
        }
        for id in std::mem::take(&mut self.reads.forwarded) {
            self.ready.reads.push(ReadState::refused(id, leader));
        }
        self.reads.rounds.clear();
        self.reads.lease_until = None;
    }
}
