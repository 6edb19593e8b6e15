//! Membership changes (the thesis, chapter 4): a configuration is an entry of the log, in force
//! from the moment a server appends it. One voter at a time goes directly to the new
//! configuration (4.2); anything larger passes through a joint configuration that needs both
//! majorities (4.3, the paper's section 6), which the leader leaves on its own once the joint
//! entry commits. Learners receive the log without voting (4.2.1, etcd's learners). A leader
//! changes the membership only after it committed an entry of its own term, the fix to the
//! single-server bug published in 2015; and a leader that is not a voter of a committed
//! configuration hands leadership to the most caught-up voter and steps down (4.2.2).

use crate::{Message, Progress, RaftReplica, RaftRole};
use consensus_core::{ChangeError, ConfChange, NodeId, Payload, Position, ProposeError};

impl RaftReplica {
    /// Appends the configuration entry that makes `changes`, if the leader may start one now.
    pub(crate) fn start_change(
        &mut self,
        changes: &[ConfChange],
    ) -> Result<Position, ProposeError> {
        if self.role != RaftRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id,
            });
        }
        if self.transferee.is_some() {
            return Err(ProposeError::NotLeader { leader: None });
        }
        if let Some(p) = self.members.latest_position() {
            if p.seq > self.commit_index {
                return Err(ChangeError::InProgress(p).into());
            }
        }
        if self.config.change_after_own_term_commit
            && self.log.term_at(self.commit_index) != Some(self.hard.current_term)
        {
            return Err(ChangeError::NotYetCommittedInTerm.into());
        }
        let current = self.members.latest().clone();
        for c in changes {
            if let ConfChange::AddVoter { id, .. } = c {
                // A learner votes only once it holds what is committed (etcd's rule): a
                // voter far behind would weaken the quorum it joins.
                let matched = self.progress.get(id).map_or(0, |p| p.match_index);
                if current.is_learner(*id) && matched < self.commit_index {
                    return Err(ChangeError::NotCaughtUp {
                        id: *id,
                        matched,
                        commit: self.commit_index,
                    }
                    .into());
                }
            }
        }
        let (next, joint) = current.apply(changes)?;
        let entry = if joint { current.joint_to(&next) } else { next };
        Ok(self.append_new_entry(Payload::Config(Box::new(entry))))
    }

    /// Recomputes voters, peers and quorum from the configuration in force; a leader starts
    /// or stops replicating to members that came or went.
    pub(crate) fn membership_changed(&mut self) {
        let m = self.members.latest();
        self.quorum = m.quorum();
        self.voters = m.all_voters();
        let me = self.id;
        self.others = m.members().into_iter().filter(|&p| p != me).collect();
        match self.role {
            RaftRole::Leader => {
                let last = self.log.last_index();
                for &p in &self.others {
                    self.progress
                        .entry(p)
                        .or_insert_with(|| Progress::new(last));
                }
                let others = &self.others;
                self.progress.retain(|id, _| others.contains(id));
                self.broadcast_pending = true;
            }
            RaftRole::Candidate | RaftRole::PreCandidate if !self.voters.contains(&me) => {
                let term = self.hard.current_term;
                self.become_follower(term, None);
            }
            _ => {}
        }
    }

    /// True if this node may campaign: it votes in the configuration in force.
    pub(crate) fn is_voter(&self) -> bool {
        self.voters.contains(&self.id)
    }

    /// Once the configuration in force is committed, a leader leaves a joint configuration
    /// (appending the new one alone) or, if it no longer votes, hands over and steps down.
    pub(crate) fn after_commit(&mut self) {
        if self.role != RaftRole::Leader {
            return;
        }
        let Some(at) = self.members.latest_position() else {
            return;
        };
        if at.seq > self.commit_index {
            return;
        }
        let m = self.members.latest().clone();
        if m.is_joint() {
            self.append_new_entry(Payload::Config(Box::new(m.leave_joint())));
            return;
        }
        if m.is_voter(self.id) {
            return;
        }
        // The most caught-up voter takes over at once instead of after an election timeout.
        let last = self.log.last_index();
        let target: Option<NodeId> = self
            .progress
            .iter()
            .filter(|(id, p)| m.is_voter(**id) && p.match_index == last)
            .map(|(&id, _)| id)
            .next();
        let term = self.hard.current_term;
        if let Some(to) = target {
            self.send(to, Message::TimeoutNow { term });
        }
        self.become_follower(term, None);
    }

    /// Follows the log's configuration entries after an append or a truncation changed them.
    pub(crate) fn track_membership(&mut self, before: Option<Position>) {
        if self.members.latest_position() != before {
            self.membership_changed();
        }
    }
}
