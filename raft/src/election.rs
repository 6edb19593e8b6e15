//! Leader election (section 5.2), the election restriction (5.4.1), and the dissertation's
//! pre-vote (9.6) and check-quorum / leader lease (6.2, 4.2.3).

use crate::{HardState, Message, Progress, RaftReplica, RaftRole};
use consensus_core::{NodeId, Payload, Position};
use rand::RngExt;

impl RaftReplica {
    /// Dispatches one message after the term rules that apply to every RPC.
    pub(crate) fn step(&mut self, from: NodeId, msg: Message) {
        let term = msg.term();
        let current = self.hard.current_term;
        if term > current {
            match &msg {
                // A vote request while a leader is known to be alive is ignored (leader lease):
                // this is what keeps a rejoining node from deposing a healthy leader.
                Message::RequestVote {
                    pre_vote: false, ..
                } if self.config.check_quorum && self.heard_from_leader_recently() => return,
                // Pre-votes never change anyone's term.
                Message::RequestVote { pre_vote: true, .. } => {}
                Message::RequestVoteResponse {
                    pre_vote: true,
                    vote_granted: true,
                    ..
                } => {}
                Message::AppendEntries { .. }
                | Message::InstallSnapshot { .. }
                | Message::ReadProbe { .. }
                | Message::TimeoutNow { .. } => self.become_follower(term, Some(from)),
                _ => self.become_follower(term, None),
            }
        } else if term < current {
            // Tell a stale sender about the newer term; drop stale responses.
            match msg {
                Message::AppendEntries { .. } => self.send(
                    from,
                    Message::AppendEntriesResponse {
                        term: current,
                        success: false,
                        match_index: 0,
                        conflict_index: 0,
                        conflict_term: None,
                    },
                ),
                Message::InstallSnapshot {
                    last_included_index,
                    ..
                } => self.send(
                    from,
                    Message::InstallSnapshotResponse {
                        term: current,
                        match_index: 0,
                        last_included_index,
                        next_offset: None,
                    },
                ),
                Message::RequestVote { pre_vote, .. } => self.send(
                    from,
                    Message::RequestVoteResponse {
                        term: current,
                        vote_granted: false,
                        pre_vote,
                    },
                ),
                Message::TransferVote { .. } => self.send(
                    from,
                    Message::RequestVoteResponse {
                        term: current,
                        vote_granted: false,
                        pre_vote: false,
                    },
                ),
                Message::ReadIndex { id, .. } => self.send(
                    from,
                    Message::ReadIndexResponse {
                        term: current,
                        id,
                        index: None,
                    },
                ),
                _ => {}
            }
            return;
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
            } => self.handle_request_vote(from, term, last_log_index, last_log_term, pre_vote),
            // The leader asked for this election: the lease rule above let it through.
            Message::TransferVote {
                term,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(from, term, last_log_index, last_log_term, false),
            Message::TimeoutNow { .. } => self.handle_timeout_now(from),
            Message::RequestVoteResponse {
                term,
                vote_granted,
                pre_vote,
            } => self.handle_vote_response(from, term, vote_granted, pre_vote),
            Message::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                ..
            } => self.handle_append_entries(
                from,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            ),
            Message::AppendEntriesResponse {
                success,
                match_index,
                conflict_index,
                conflict_term,
                ..
            } => self.handle_append_response(
                from,
                success,
                match_index,
                conflict_index,
                conflict_term,
            ),
            Message::InstallSnapshot {
                last_included_index,
                last_included_term,
                offset,
                data,
                done,
                members,
                ..
            } => self.handle_install_snapshot(
                from,
                Position::new(last_included_term, last_included_index),
                offset,
                &data,
                done,
                members.as_deref(),
            ),
            Message::InstallSnapshotResponse {
                match_index,
                last_included_index,
                next_offset,
                ..
            } => self.handle_install_snapshot_response(
                from,
                match_index,
                last_included_index,
                next_offset,
            ),
            Message::ReadIndex { id, lease, .. } => {
                if self.role == RaftRole::Leader {
                    let lease = lease && self.config.lease_reads;
                    self.leader_read(id, Some(from), lease);
                } else {
                    let term = self.hard.current_term;
                    self.send(
                        from,
                        Message::ReadIndexResponse {
                            term,
                            id,
                            index: None,
                        },
                    );
                }
            }
            Message::ReadIndexResponse { id, index, .. } => {
                self.handle_read_index_response(id, index)
            }
            Message::ReadProbe { term, round } => {
                if self.accept_leader(from) {
                    self.send(from, Message::ReadProbeResponse { term, round });
                }
            }
            Message::ReadProbeResponse { round, .. } => {
                self.handle_read_probe_response(from, round)
            }
        }
    }

    /// True while a leader is known to be alive: this node leads, or heard from the leader
    /// less than a minimum election timeout ago.
    pub(crate) fn heard_from_leader_recently(&self) -> bool {
        if self.role == RaftRole::Leader {
            return true;
        }
        // With leases, a node that just started may be part of a lease it forgot.
        if self.config.lease_reads && self.now < self.started_at + self.config.election_timeout_min
        {
            return true;
        }
        self.leader_id.is_some()
            && self
                .last_leader_contact
                .is_some_and(|t| self.now < t + self.config.election_timeout_min)
    }

    /// Picks a new randomized election deadline in [min, max).
    pub(crate) fn reset_election_timer(&mut self) {
        let min = self.config.election_timeout_min.as_nanos() as u64;
        let max = self.config.election_timeout_max.as_nanos() as u64;
        let timeout = self.rng.random_range(min..max);
        self.election_deadline = self.now + std::time::Duration::from_nanos(timeout);
    }

    pub(crate) fn on_election_timeout(&mut self) {
        if !self.is_voter() {
            // A learner, a node not yet added, or one removed: it never campaigns.
            self.reset_election_timer();
            return;
        }
        if self.config.pre_vote && self.voters.len() > 1 {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    /// Reverts to follower, adopting `term` if it is newer (and forgetting the vote).
    pub(crate) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        if self.role == RaftRole::Leader
            || term > self.hard.current_term
            || leader != self.leader_id
        {
            self.fail_reads();
        }
        if term > self.hard.current_term {
            self.set_hard_state(HardState {
                current_term: term,
                voted_for: None,
            });
        }
        self.role = RaftRole::Follower;
        self.leader_id = leader;
        if leader.is_some() {
            self.last_leader_contact = Some(self.now);
        }
        self.votes.clear();
        self.progress.clear();
        self.broadcast_pending = false;
        self.transferee = None;
        self.reset_election_timer();
    }

    fn become_pre_candidate(&mut self) {
        self.fail_reads();
        self.role = RaftRole::PreCandidate;
        self.leader_id = None;
        self.votes.clear();
        self.votes.insert(self.id);
        self.reset_election_timer();
        self.request_votes(true);
    }

    fn become_candidate(&mut self) {
        self.campaign(false);
    }

    /// Campaigns at once for a leadership transfer: no pre-vote, and TransferVotes.
    pub(crate) fn campaign_for_transfer(&mut self) {
        self.campaign(true);
    }

    fn campaign(&mut self, transfer: bool) {
        self.fail_reads();
        self.set_hard_state(HardState {
            current_term: self.hard.current_term + 1,
            voted_for: Some(self.id),
        });
        self.role = RaftRole::Candidate;
        self.leader_id = None;
        self.votes.clear();
        self.votes.insert(self.id);
        self.reset_election_timer();
        if self.quorum.is_reached(self.votes.iter().copied()) {
            self.become_leader();
        } else if transfer {
            let (term, last_log_index, last_log_term) = (
                self.hard.current_term,
                self.log.last_index(),
                self.log.last_term(),
            );
            let peers: Vec<NodeId> = self.voter_peers().collect();
            for p in peers {
                self.send(
                    p,
                    Message::TransferVote {
                        term,
                        last_log_index,
                        last_log_term,
                    },
                );
            }
        } else {
            self.request_votes(false);
        }
    }

    fn request_votes(&mut self, pre_vote: bool) {
        let term = self.hard.current_term + u64::from(pre_vote);
        let last_log_index = self.log.last_index();
        let last_log_term = self.log.last_term();
        let peers: Vec<NodeId> = self.voter_peers().collect();
        for p in peers {
            self.send(
                p,
                Message::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                    pre_vote,
                },
            );
        }
    }

    fn become_leader(&mut self) {
        self.role = RaftRole::Leader;
        self.leader_id = Some(self.id);
        self.votes.clear();
        let last = self.log.last_index();
        self.progress = self.peers().map(|p| (p, Progress::new(last))).collect();
        self.heartbeat_deadline = self.now + self.config.heartbeat_interval;
        self.check_quorum_deadline = self.now + self.config.election_timeout_min;
        // A no-op entry of the new term lets the leader commit everything before it (section 8).
        self.append_new_entry(Payload::Noop);
    }

    fn handle_request_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
        pre_vote: bool,
    ) {
        let up_to_date = self.log.is_up_to_date(last_log_term, last_log_index);
        if pre_vote {
            let grant =
                term > self.hard.current_term && up_to_date && !self.heard_from_leader_recently();
            self.send(
                from,
                Message::RequestVoteResponse {
                    term: if grant { term } else { self.hard.current_term },
                    vote_granted: grant,
                    pre_vote: true,
                },
            );
            return;
        }
        let free_to_vote = self.hard.voted_for.is_none() || self.hard.voted_for == Some(from);
        let grant = free_to_vote && up_to_date && self.role != RaftRole::Leader;
        if grant {
            self.set_hard_state(HardState {
                current_term: self.hard.current_term,
                voted_for: Some(from),
            });
            self.reset_election_timer();
        }
        self.send(
            from,
            Message::RequestVoteResponse {
                term: self.hard.current_term,
                vote_granted: grant,
                pre_vote: false,
            },
        );
    }

    fn handle_vote_response(&mut self, from: NodeId, term: u64, granted: bool, pre_vote: bool) {
        let (wanted_role, wanted_term) = if pre_vote {
            (RaftRole::PreCandidate, self.hard.current_term + 1)
        } else {
            (RaftRole::Candidate, self.hard.current_term)
        };
        if self.role != wanted_role || term != wanted_term || !granted {
            return;
        }
        self.votes.insert(from);
        if self.quorum.is_reached(self.votes.iter().copied()) {
            if pre_vote {
                self.become_candidate();
            } else {
                self.become_leader();
            }
        }
    }

    /// Check-quorum: a leader that has not heard from a majority within an election timeout
    /// steps down, so a partitioned leader stops taking writes.
    pub(crate) fn check_quorum(&mut self) {
        let active: Vec<NodeId> = std::iter::once(self.id)
            .chain(
                self.progress
                    .iter()
                    .filter(|(_, p)| p.recent_active)
                    .map(|(&id, _)| id),
            )
            .collect();
        for p in self.progress.values_mut() {
            p.recent_active = false;
        }
        self.check_quorum_deadline = self.now + self.config.election_timeout_min;
        if !self.quorum.is_reached(active) {
            self.become_follower(self.hard.current_term, None);
        }
    }
}
