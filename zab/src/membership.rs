//! Dynamic reconfiguration as ZooKeeper 3.5+ runs it (`Leader.propose` of a reconfig
//! transaction, `QuorumPeer.processReconfig`), and observers.
//!
//! A new configuration is proposed as a transaction. From the moment a server logs it until
//! it commits, every quorum that server counts (election, NEWLEADER, each proposal's ACKs)
//! needs a majority of the committed configuration and of the proposed one: ZooKeeper's
//! `lastSeenQuorumVerifier` beside its `quorumVerifier`. On commit the new configuration is
//! in force alone. The leader drops its connections to servers that left; a leader that no
//! longer votes steps down and the new voters elect a leader (ZooKeeper instead names a
//! designated leader in COMMITANDACTIVATE; re-electing is slower but needs no extra rule).
//! Observers receive each committed transaction as one INFORM and never vote or ACK.

use crate::message::Packet;
use crate::replica::HardState;
use crate::replica::{ZabReplica, ZabRole};
use crate::zxid::Zxid;
use consensus_core::{
    ChangeError, ConfChange, Membership, NodeId, Payload, Position, ProposeError,
};

impl ZabReplica {
    /// The leader's side of `reconfig`: propose the new configuration as a transaction.
    pub(crate) fn start_reconfig(
        &mut self,
        changes: &[ConfChange],
    ) -> Result<Position, ProposeError> {
        if !self.is_established_leader() {
            return Err(self.not_leader());
        }
        if let Some(p) = self.members.latest_position() {
            if p > self.committed_config().0 {
                return Err(ChangeError::InProgress(p).into());
            }
        }
        let current = self.members.latest().clone();
        // Activation on commit with both majorities counted meanwhile makes any change safe
        // in one step (ZooKeeper's bulk reconfig): no joint entry is needed.
        let (next, _) = current.apply(changes)?;
        self.leader_propose(Payload::Config(Box::new(next)))
    }

    /// The configuration in force and the zxid of its reconfig: the last one committed in
    /// the log, or the one in the configuration file, whichever is newer.
    pub(crate) fn committed_config(&self) -> (Position, Membership) {
        let commit = self.last_committed.position();
        let from_log = match self.members.position_at(commit) {
            Some(p) => (p, self.members.at(commit).clone()),
            None => (
                self.log.snapshot_zxid().position(),
                self.members.base().clone(),
            ),
        };
        match &self.hard.config {
            Some((p, m)) if *p > from_log.0 => (*p, m.clone()),
            _ => from_log,
        }
    }

    /// A peer's last committed configuration, heard while electing: adopted if newer
    /// (ZooKeeper's `FastLeaderElection` processes the notification's config), and the
    /// election starts over with the new quorum.
    pub(crate) fn on_config(&mut self, at: Position, members: Membership) {
        if at <= self.committed_config().0 {
            return;
        }
        let hard = HardState {
            config: Some((at, members)),
            ..self.hard.clone()
        };
        self.set_hard(hard);
        self.membership_changed();
        if matches!(self.role, ZabRole::Looking) {
            self.go_looking();
        }
    }

    /// Recomputes the quorum after the log's configurations or the commit point moved.
    pub(crate) fn membership_changed(&mut self) {
        let (at, committed) = self.committed_config();
        // Activation writes the configuration file (before anything this Ready sends).
        let from_log = self.members.position_at(self.last_committed.position()) == Some(at);
        if from_log && self.hard.config.as_ref().is_none_or(|(p, _)| *p < at) {
            let hard = HardState {
                config: Some((at, committed.clone())),
                ..self.hard.clone()
            };
            self.set_hard(hard);
        }
        let latest = self.members.latest();
        let pending = self.members.latest_position().is_some_and(|p| p > at);
        let quorum = if pending {
            committed.quorum_while_proposed(latest)
        } else {
            committed.quorum()
        };
        let mut known = committed.members();
        if pending {
            known.extend(latest.members());
        }
        known.sort_unstable();
        known.dedup();
        let was_member = self.known.contains(&self.id);
        self.known = known;
        if quorum != self.quorum {
            self.voters = quorum.voters();
            self.fle.set_quorum(quorum.clone());
            self.quorum = quorum;
        }
        let pending_epoch = self
            .members
            .latest_position()
            .filter(|_| pending)
            .and_then(Zxid::from_position)
            .map(|z| u64::from(z.epoch()));
        self.fle
            .set_pending(pending_epoch.map(|e| (committed.quorum(), e)));
        let id = self.id;
        let ZabRole::Leading(l) = &mut self.role else {
            if matches!(self.role, ZabRole::Following(_)) && was_member && !self.known.contains(&id)
            {
                // Removed: stop following; the ensemble no longer talks to this server.
                self.go_looking();
            }
            return;
        };
        let known = &self.known;
        l.handlers.retain(|p, _| known.contains(p));
        // A server that now votes but was an observer: the proposals still outstanding,
        // then every later one, so that it can ACK them.
        let from = self.last_committed;
        let newly: Vec<NodeId> = l
            .handlers
            .iter()
            .filter(|(p, h)| {
                h.forwarding() && h.proposed_from.is_none() && self.quorum.contains(**p)
            })
            .map(|(&p, _)| p)
            .collect();
        let established = l.established();
        let last_proposed = l.last_proposed;
        for p in newly {
            if let ZabRole::Leading(l) = &mut self.role {
                if let Some(h) = l.handlers.get_mut(&p) {
                    h.proposed_from = Some(from);
                }
            }
            let outstanding: Vec<_> = self.log.range(from, last_proposed).to_vec();
            for e in outstanding {
                let zxid = Zxid::from_position(e.pos).expect("logged zxids fit");
                self.broadcast_to_learner(
                    p,
                    Packet::Proposal {
                        zxid,
                        data: e.payload,
                    },
                );
            }
        }
        if established {
            let quorum = self.quorum.clone();
            let done = match &mut self.role {
                ZabRole::Leading(l) => l.outstanding.set_quorum(&quorum),
                _ => Vec::new(),
            };
            self.commit(done);
        }
        if !committed.is_voter(self.id) && matches!(self.role, ZabRole::Leading(_)) {
            self.go_looking();
        }
    }

    /// The commit point moved from `before`: a configuration proposed after it may now be
    /// in force.
    pub(crate) fn commit_moved(&mut self, before: Zxid) {
        if self
            .members
            .latest_position()
            .is_some_and(|p| p > before.position())
        {
            self.membership_changed();
        }
    }

    /// True if learner `p` is sent PROPOSALs (a voter); an observer waits for INFORM.
    pub(crate) fn proposes_to(&self, p: NodeId) -> bool {
        match &self.role {
            ZabRole::Leading(l) => l
                .handlers
                .get(&p)
                .is_some_and(|h| h.proposed_from.is_some()),
            _ => false,
        }
    }

    /// The transaction to INFORM learner `p` of when `z` commits, if `p` never got its PROPOSAL.
    pub(crate) fn informed(&self, p: NodeId, z: Zxid) -> Option<Payload> {
        let ZabRole::Leading(l) = &self.role else {
            return None;
        };
        let h = l.handlers.get(&p)?;
        if h.proposed_from.is_some_and(|s| s <= z) {
            return None;
        }
        self.log.get(z).map(|e| e.payload.clone())
    }

    /// An observer's INFORM during broadcast: the transaction, committed.
    pub(crate) fn follower_inform(&mut self, zxid: Zxid, data: Payload) {
        let ZabRole::Following(f) = &mut self.role else {
            return;
        };
        if f.pending.front() == Some(&zxid) {
            // Logged during synchronization, before the leader committed it.
            f.pending.pop_front();
        } else if zxid.position() > self.log.last_position() && f.pending.is_empty() {
            self.log_entries(vec![consensus_core::Entry {
                pos: zxid.position(),
                payload: data,
            }]);
        } else {
            return;
        }
        let before = self.last_committed;
        self.last_committed = self.last_committed.max(zxid);
        self.commit_moved(before);
    }
}
