//! Leadership transfer (dissertation 3.10): the leader stops taking proposals, brings the
//! target's log up to date, and sends it TimeoutNow; the target starts an election at once with
//! a TransferVote, which voters grant even while they still hear the leader. An attempt that
//! has not ended within an election timeout is dropped and the leader takes proposals again.

use crate::{Message, RaftReplica, RaftRole};
use consensus_core::{NodeId, ProposeError};

impl RaftReplica {
    /// Starts handing leadership to `to`.
    pub(crate) fn start_transfer(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != RaftRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader_id,
            });
        }
        if !self.voters.contains(&to) {
            return Err(ProposeError::NotVoter(to));
        }
        if to == self.id {
            return Ok(());
        }
        self.transferee = Some((to, self.now + self.config.election_timeout_min));
        self.maybe_timeout_now(to);
        if self.transferee.is_some() {
            // Not caught up yet: replicate what it lacks (TimeoutNow follows its answer).
            self.send_append(to, false);
        }
        Ok(())
    }

    /// Sends TimeoutNow to the transfer's target once its log matches the leader's.
    pub(crate) fn maybe_timeout_now(&mut self, from: NodeId) {
        let Some((to, _)) = self.transferee else {
            return;
        };
        let caught_up = self
            .progress
            .get(&to)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if from == to && caught_up {
            let term = self.hard.current_term;
            self.send(to, Message::TimeoutNow { term });
        }
    }

    /// Drops a transfer that has not ended within its election timeout.
    pub(crate) fn expire_transfer(&mut self) {
        if self.transferee.is_some_and(|(_, until)| self.now >= until) {
            self.transferee = None;
        }
    }

    /// The target's side: campaign now, without a pre-vote, with a TransferVote.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.role == RaftRole::Leader || self.leader_id != Some(from) {
            return;
        }
        self.campaign_for_transfer();
    }
}
