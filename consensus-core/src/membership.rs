//! Cluster membership, shared by both protocols: who votes, who only listens (Raft's learners,
//! ZooKeeper's observers), the joint configuration of a change in flight, the changes an
//! operator asks for, and the history of configurations a log carries.
//!
//! A configuration travels in the log as [`crate::Payload::Config`]. Raft uses the latest one
//! in its log, committed or not (the thesis, section 4.1); ZAB activates one on commit and,
//! while one is proposed, counts quorums in both the committed and the proposed configuration
//! (ZooKeeper's `lastSeenQuorumVerifier`). [`MembershipLog`] answers both questions.

use crate::quorum::Quorum;
use crate::types::{Entry, NodeId, Payload, Position};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One configuration: voters, non-voting learners, and, during a joint change, the voters of
/// the configuration being left.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Membership {
    /// Voting members, sorted.
    pub voters: Vec<NodeId>,
    /// Members that receive the log but neither vote nor count (Raft learners, ZAB observers), sorted.
    pub learners: Vec<NodeId>,
    /// The previous voters while a joint configuration is in force (empty otherwise), sorted.
    pub outgoing: Vec<NodeId>,
    /// Where each member listens, as the operator gave it (opaque to the cores; empty in the
    /// simulator).
    pub addrs: BTreeMap<NodeId, String>,
}

/// One change an operator asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// Add a non-voting member that receives the log (listening at `addr`, if given).
    AddLearner {
        /// The new member.
        id: NodeId,
        /// Where it listens ("" when the driver needs no address).
        addr: String,
    },
    /// Make a member a voter (a learner is promoted; an unknown node is added as a voter).
    AddVoter {
        /// The member.
        id: NodeId,
        /// Where it listens, for a node not yet a member ("" to keep what is known).
        addr: String,
    },
    /// Remove a member, voter or learner.
    Remove {
        /// The member.
        id: NodeId,
    },
}

impl ConfChange {
    /// Adds `id` as a learner, with no address (the simulator's nodes need none).
    pub fn learner(id: NodeId) -> Self {
        ConfChange::AddLearner {
            id,
            addr: String::new(),
        }
    }

    /// Makes `id` a voter, with no address.
    pub fn voter(id: NodeId) -> Self {
        ConfChange::AddVoter {
            id,
            addr: String::new(),
        }
    }

    /// The node the change is about.
    pub fn node(&self) -> NodeId {
        match self {
            ConfChange::AddLearner { id, .. }
            | ConfChange::AddVoter { id, .. }
            | ConfChange::Remove { id } => *id,
        }
    }
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// An earlier change is not committed yet (one change at a time).
    #[error("a membership change is already in progress (at {0})")]
    InProgress(Position),
    /// Raft's fix to single-server changes: a new leader must commit an entry of its own term
    /// before it changes the membership.
    #[error("the leader has not yet committed an entry of its term; try again shortly")]
    NotYetCommittedInTerm,
    /// A learner to promote has not caught up with the leader's commit index yet.
    #[error("node {id} has not caught up yet (it holds the log through {matched}, the leader committed through {commit})")]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// How far its log matches the leader's.
        matched: u64,
        /// The leader's commit index.
        commit: u64,
    },
    /// The change makes no sense for the current configuration.
    #[error("{0}")]
    Invalid(String),
}

impl Membership {
    /// A configuration of `voters` only.
    pub fn of_voters(voters: &[NodeId]) -> Self {
        let mut v = voters.to_vec();
        v.sort_unstable();
        v.dedup();
        Membership {
            voters: v,
            ..Membership::default()
        }
    }

    /// The quorum decisions need: a majority of `voters`, and of `outgoing` while joint.
    pub fn quorum(&self) -> Quorum {
        if self.outgoing.is_empty() {
            Quorum::majority(&self.voters)
        } else {
            Quorum::joint(&self.outgoing, &self.voters)
        }
    }

    /// True while a joint configuration is in force.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// True if `id` votes (in either half of a joint configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// True if `id` is a learner (and not a voter).
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id) && !self.is_voter(id)
    }

    /// True if `id` is a member of any kind.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member, sorted: voters of both halves and learners.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Every voter of either half, sorted.
    pub fn all_voters(&self) -> Vec<NodeId> {
        self.quorum().voters()
    }

    /// The quorum while `proposed` waits to commit, for a protocol that puts a configuration
    /// in force on commit (ZAB): a majority of this configuration's voters and of `proposed`'s.
    pub fn quorum_while_proposed(&self, proposed: &Membership) -> Quorum {
        Quorum::joint(&self.all_voters(), &proposed.all_voters())
    }

    /// The configuration after `changes`, and whether reaching it safely needs a joint
    /// configuration first (more than one voter added or removed at once). Refuses a
    /// configuration without voters, a change to an unknown member, or changes on a joint one.
    pub fn apply(&self, changes: &[ConfChange]) -> Result<(Membership, bool), ChangeError> {
        if self.is_joint() {
            return Err(ChangeError::Invalid(
                "the configuration is joint; wait for it to settle".into(),
            ));
        }
        if changes.is_empty() {
            return Err(ChangeError::Invalid("no change given".into()));
        }
        let mut next = self.clone();
        for c in changes {
            match c {
                ConfChange::AddLearner { id, addr } => {
                    if next.is_voter(*id) {
                        return Err(ChangeError::Invalid(format!(
                            "node {id} is already a voter"
                        )));
                    }
                    if next.learners.contains(id) {
                        return Err(ChangeError::Invalid(format!(
                            "node {id} is already a learner"
                        )));
                    }
                    next.learners.push(*id);
                    if !addr.is_empty() {
                        next.addrs.insert(*id, addr.clone());
                    }
                }
                ConfChange::AddVoter { id, addr } => {
                    if next.voters.contains(id) {
                        return Err(ChangeError::Invalid(format!(
                            "node {id} is already a voter"
                        )));
                    }
                    next.learners.retain(|l| l != id);
                    next.voters.push(*id);
                    if !addr.is_empty() {
                        next.addrs.insert(*id, addr.clone());
                    }
                }
                ConfChange::Remove { id } => {
                    if !next.contains(*id) {
                        return Err(ChangeError::Invalid(format!("node {id} is not a member")));
                    }
                    next.voters.retain(|v| v != id);
                    next.learners.retain(|l| l != id);
                    next.addrs.remove(id);
                }
            }
        }
        next.voters.sort_unstable();
        next.learners.sort_unstable();
        if next.voters.is_empty() {
            return Err(ChangeError::Invalid(
                "a configuration needs at least one voter".into(),
            ));
        }
        let moved = self
            .voters
            .iter()
            .filter(|v| !next.voters.contains(v))
            .count()
            + next
                .voters
                .iter()
                .filter(|v| !self.voters.contains(v))
                .count();
        Ok((next, moved > 1))
    }

    /// The joint configuration that leads from `self` to `next`: `next`'s voters and learners,
    /// with `self`'s voters outgoing (their addresses kept until the joint one is left).
    pub fn joint_to(&self, next: &Membership) -> Membership {
        let mut j = next.clone();
        j.outgoing = self.voters.clone();
        for (id, a) in &self.addrs {
            j.addrs.entry(*id).or_insert_with(|| a.clone());
        }
        j
    }

    /// The configuration a joint one settles into: its incoming voters and learners alone.
    pub fn leave_joint(&self) -> Membership {
        let mut m = self.clone();
        m.outgoing.clear();
        let keep = m.members();
        m.addrs.retain(|id, _| keep.contains(id));
        m
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |v: &[NodeId]| {
            v.iter()
                .map(|i| format!("n{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(f, "voters {{{}}}", ids(&self.voters))?;
        if !self.outgoing.is_empty() {
            write!(f, " joint with {{{}}}", ids(&self.outgoing))?;
        }
        if !self.learners.is_empty() {
            write!(f, " learners {{{}}}", ids(&self.learners))?;
        }
        Ok(())
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The configurations a log carries: the one in force at its base (the snapshot, or the
/// initial one) and every configuration entry after it, by position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipLog {
    base: Membership,
    entries: Vec<(Position, Membership)>,
}

impl MembershipLog {
    /// A history that starts from `base` (the snapshot's configuration, or the initial one),
    /// followed by the configuration entries among `entries`.
    pub fn new(base: Membership, entries: &[Entry]) -> Self {
        let mut log = MembershipLog {
            base,
            entries: Vec::new(),
        };
        log.appended(entries);
        log
    }

    /// The history a node recovers from its disk: the snapshot's configuration (`initial` if
    /// there is no snapshot or it carries none), then the configuration entries of its log.
    pub fn recovered<H>(initial: &Membership, recovered: &crate::storage::Recovered<H>) -> Self {
        let base = recovered
            .snapshot
            .as_ref()
            .and_then(|s| s.members.as_deref().cloned())
            .unwrap_or_else(|| initial.clone());
        MembershipLog::new(base, &recovered.entries)
    }

    /// Records the configuration entries among `entries` (appended to the log, in order).
    pub fn appended(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Payload::Config(m) = &e.payload {
                self.entries.push((e.pos, (**m).clone()));
            }
        }
    }

    /// Forgets configuration entries after `pos` (the log was truncated there).
    pub fn truncated_after(&mut self, pos: Position) {
        self.entries.retain(|(p, _)| *p <= pos);
    }

    /// Forgets configuration entries after sequence number `seq` (a log cut by index).
    pub fn truncated_after_seq(&mut self, seq: u64) {
        self.entries.retain(|(p, _)| p.seq <= seq);
    }

    /// The log before `pos` became a snapshot: the configuration at `pos` is the new base.
    pub fn compacted(&mut self, pos: Position) {
        self.base = self.at(pos).clone();
        self.entries.retain(|(p, _)| *p > pos);
    }

    /// The log was replaced by a snapshot carrying `members` (its configuration).
    pub fn installed(&mut self, members: Membership) {
        self.base = members;
        self.entries.clear();
    }

    /// The configuration at the log's base (its snapshot, or the start).
    pub fn base(&self) -> &Membership {
        &self.base
    }

    /// The latest configuration in the log, committed or not (Raft's rule).
    pub fn latest(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, m)| m)
    }

    /// Position of the latest configuration entry still in the log, if any.
    pub fn latest_position(&self) -> Option<Position> {
        self.entries.last().map(|(p, _)| *p)
    }

    /// The configuration in force at `pos`: the last one at or before it.
    pub fn at(&self, pos: Position) -> &Membership {
        self.entries
            .iter()
            .rev()
            .find(|(p, _)| *p <= pos)
            .map_or(&self.base, |(_, m)| m)
    }

    /// Position of the last configuration entry at or before `pos` (`None`: the base's).
    pub fn position_at(&self, pos: Position) -> Option<Position> {
        self.entries
            .iter()
            .rev()
            .map(|(p, _)| *p)
            .find(|p| *p <= pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: NodeId) -> ConfChange {
        ConfChange::voter(id)
    }

    #[test]
    fn one_voter_at_a_time_is_simple_and_more_is_joint() {
        let m = Membership::of_voters(&[3, 1, 2]);
        let (next, joint) = m.apply(&[add(4)]).unwrap();
        assert_eq!(next.voters, vec![1, 2, 3, 4]);
        assert!(!joint);
        let (next, joint) = m.apply(&[add(4), ConfChange::Remove { id: 1 }]).unwrap();
        assert_eq!(next.voters, vec![2, 3, 4]);
        assert!(joint, "replacing a voter moves two");
        let j = m.joint_to(&next);
        assert!(j.is_joint());
        assert!(
            !j.quorum().is_reached([1, 4]),
            "1 of the old voters, 1 of the new"
        );
        assert!(j.quorum().is_reached([2, 3, 4]) && j.quorum().is_reached([1, 2, 4]));
        assert!(!j.quorum().is_reached([1, 2]));
        assert_eq!(j.leave_joint(), next);
    }

    #[test]
    fn learners_do_not_count_and_promotion_moves_one_voter() {
        let m = Membership::of_voters(&[1, 2, 3]);
        let (m, joint) = m
            .apply(&[ConfChange::AddLearner {
                id: 4,
                addr: "a".into(),
            }])
            .unwrap();
        assert!(!joint);
        assert!(m.is_learner(4) && !m.is_voter(4) && m.contains(4));
        assert!(!m.quorum().is_reached([1, 4]));
        let (m, joint) = m.apply(&[add(4)]).unwrap();
        assert!(!joint);
        assert!(m.is_voter(4) && !m.is_learner(4));
        assert_eq!(m.addrs.get(&4).map(String::as_str), Some("a"));
    }

    #[test]
    fn nonsense_changes_are_refused() {
        let m = Membership::of_voters(&[1]);
        assert!(
            m.apply(&[ConfChange::Remove { id: 1 }]).is_err(),
            "no voter left"
        );
        assert!(m.apply(&[ConfChange::Remove { id: 7 }]).is_err());
        assert!(m.apply(&[add(1)]).is_err());
        assert!(m.apply(&[]).is_err());
        let j = m.joint_to(&Membership::of_voters(&[2, 3]));
        assert!(
            j.apply(&[add(4)]).is_err(),
            "joint configurations settle first"
        );
    }

    #[test]
    fn the_history_follows_appends_truncations_and_snapshots() {
        let c = |era, seq, voters: &[NodeId]| Entry {
            pos: Position::new(era, seq),
            payload: Payload::Config(Box::new(Membership::of_voters(voters))),
        };
        let base = Membership::of_voters(&[1, 2, 3]);
        let mut h = MembershipLog::new(
            base.clone(),
            &[Entry::noop(Position::new(1, 1)), c(1, 2, &[1, 2, 3, 4])],
        );
        assert_eq!(h.latest().voters, vec![1, 2, 3, 4]);
        assert_eq!(h.at(Position::new(1, 1)), &base);
        h.appended(&[c(1, 5, &[1, 2, 3, 4, 5])]);
        // ZAB: committed through (1, 2), the proposal at (1, 5) makes quorums joint.
        let q = h.at(Position::new(1, 2)).quorum_while_proposed(h.latest());
        assert!(!q.is_reached([1, 2, 5]), "3 of the committed 4 too");
        assert!(q.is_reached([1, 2, 3]));
        assert!(!q.is_reached([1, 2, 3].into_iter().filter(|&i| i != 3)));
        h.truncated_after(Position::new(1, 4));
        assert_eq!(h.latest().voters, vec![1, 2, 3, 4]);
        h.compacted(Position::new(1, 3));
        assert_eq!(h.latest_position(), None);
        assert_eq!(h.latest().voters, vec![1, 2, 3, 4], "the base moved");
        h.installed(Membership::of_voters(&[9]));
        assert_eq!(h.at(Position::ZERO).voters, vec![9]);
    }
}
