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
//!
//! A follower keeps one request for reads in flight to the leader per kind (one for reads a
//! lease may answer, one for the rest), as etcd does: the reads that arrive meanwhile wait
//! and go together in the next request, once the answer to this one is in. Every read of a
//! request arrived before it was sent, so an index the leader takes after receiving it is
//! recent enough for each of them. A request unanswered after `election_timeout_min` is
//! given up: its reads fail, and the next one goes.

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
    /// This follower's reads for the leader, per kind: `[index, lease]`.
    forwarded: [Forwarded; 2],
}

/// A follower's reads of one kind on their way to the leader.
#[derive(Clone, Debug, Default)]
struct Forwarded {
    /// Reads that go in the next request.
    unsent: Vec<u64>,
    /// The request in flight, if any.
    in_flight: Option<Request>,
}

/// A request for reads sent to the leader.
#[derive(Clone, Debug)]
struct Request {
    /// Its id: the id of its first read (unique, as the driver's read ids are).
    id: u64,
    /// When it was sent.
    sent: Time,
    /// The reads it carries.
    reads: Vec<u64>,
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
                Some(_) => {
                    self.reads.forwarded[usize::from(level == ReadLevel::Lease)]
                        .unsent
                        .push(id);
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

    /// True when reads wait for a round that can start now, or to be forwarded (for
    /// `has_ready`).
    pub(crate) fn reads_need_round(&self) -> bool {
        (self.role == RaftRole::Leader
            && self.reads.pending.iter().any(|r| r.round == 0)
            && self.own_term_committed())
            || self
                .reads
                .forwarded
                .iter()
                .any(|f| !f.unsent.is_empty() && f.in_flight.is_none())
    }

    /// When this follower gives up its oldest request for reads in flight, if any.
    pub(crate) fn forwarded_reads_deadline(&self) -> Option<Time> {
        self.reads
            .forwarded
            .iter()
            .filter_map(|f| f.in_flight.as_ref())
            .map(|r| r.sent + self.config.election_timeout_min)
            .min()
    }

    /// Gives up the requests for reads that went unanswered for `election_timeout_min` (the
    /// request or its answer was lost): their reads fail, and the reads waiting behind them
    /// go in a new request.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        let timeout = self.config.election_timeout_min;
        for f in &mut self.reads.forwarded {
            if let Some(r) = f.in_flight.take_if(|r| self.now >= r.sent + timeout) {
                for id in r.reads {
                    self.ready
                        .reads
                        .push(ReadState::refused(id, self.leader_id));
                }
            }
        }
    }

    /// Sends the leader one request per kind for the reads waiting, unless one of that kind
    /// is in flight; without a leader now, they fail.
    pub(crate) fn forward_reads(&mut self) {
        let term = self.hard.current_term;
        for (kind, lease) in [(0, false), (1, true)] {
            let f = &mut self.reads.forwarded[kind];
            if f.in_flight.is_some() {
                continue;
            }
            let reads = std::mem::take(&mut f.unsent);
            let Some(&first) = reads.first() else {
                continue;
            };
            match self.leader_id.filter(|&l| l != self.id) {
                Some(leader) => {
                    f.in_flight = Some(Request {
                        id: first,
                        sent: self.now,
                        reads,
                    });
                    self.send(
                        leader,
                        Message::ReadIndex {
                            term,
                            id: first,
                            lease,
                        },
                    );
                }
                None => {
                    for id in reads {
                        self.ready.reads.push(ReadState::refused(id, None));
                    }
                }
            }
        }
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

    /// The leader's answer to a request for reads this follower forwarded.
    pub(crate) fn handle_read_index_response(&mut self, id: u64, index: Option<(u64, u64)>) {
        let Some(request) = self
            .reads
            .forwarded
            .iter_mut()
            .find_map(|f| f.in_flight.take_if(|r| r.id == id))
        else {
            return;
        };
        let at = match index {
            Some((term, index)) => Ok(Position::new(term, index)),
            None => Err(ProposeError::NotLeader {
                leader: self.leader_id,
            }),
        };
        for id in request.reads {
            self.ready.reads.push(ReadState { id, at: at.clone() });
        }
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
        // The requests in flight first, oldest first, then the reads not yet sent.
        let [index, lease] = std::mem::take(&mut self.reads.forwarded);
        let mut in_flight: Vec<Request> =
            index.in_flight.into_iter().chain(lease.in_flight).collect();
        in_flight.sort_by_key(|r| r.id);
        let sent = in_flight.into_iter().flat_map(|r| r.reads);
        for id in sent.chain(index.unsent).chain(lease.unsent) {
            self.ready.reads.push(ReadState::refused(id, leader));
        }
        self.reads.rounds.clear();
        self.reads.lease_until = None;
    }
}
