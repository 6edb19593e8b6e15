//! The leader's side of broadcast: outstanding proposals, their acknowledgements, and the
//! strictly ordered commit (`Leader.propose`, `processAck`, `tryToCommit`).

use crate::zxid::Zxid;
use consensus_core::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Proposals of the current epoch that are not yet committed, with who acknowledged each.
#[derive(Clone, Debug)]
pub struct Outstanding {
    quorum: usize,
    proposals: BTreeMap<Zxid, BTreeSet<NodeId>>,
    last_committed: Zxid,
}

impl Outstanding {
    /// A tracker for an ensemble of `voters` servers, starting after `last_committed`.
    pub fn new(voters: usize, last_committed: Zxid) -> Self {
        Outstanding {
            quorum: voters / 2 + 1,
            proposals: BTreeMap::new(),
            last_committed,
        }
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
        debug_assert!(self.proposals.keys().next_back().is_none_or(|&z| z < zxid));
        debug_assert!(zxid > self.last_committed);
        self.proposals.insert(zxid, BTreeSet::new());
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
        let Some(acks) = self.proposals.get_mut(&zxid) else {
            return Vec::new();
        };
        acks.insert(from);
        let mut committed = Vec::new();
        while let Some(entry) = self.proposals.first_entry() {
            if entry.get().len() < self.quorum {
                break;
            }
            let (z, _) = entry.remove_entry();
            self.last_committed = z;
            committed.push(z);
        }
        committed
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
        let mut o = Outstanding::new(5, Zxid::epoch_marker(2));
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
        let mut o = Outstanding::new(3, Zxid::epoch_marker(2));
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
        let mut o = Outstanding::new(3, Zxid::epoch_marker(2));
        o.propose(z(1));
        // One follower acked; the leader's own write is still in flight: no quorum yet.
        assert!(o.ack(2, z(1)).is_empty());
        // The leader's driver reports the fsync: now 2 of 3.
        assert_eq!(o.ack(1, z(1)), vec![z(1)]);
    }

    #[test]
    fn acks_for_epoch_markers_committed_or_unknown_zxids_are_ignored() {
        let mut o = Outstanding::new(3, Zxid::epoch_marker(2));
        o.propose(z(1));
        assert!(o.ack(1, Zxid::epoch_marker(2)).is_empty());
        assert!(o.ack(1, z(9)).is_empty());
        o.ack(1, z(1));
        o.ack(2, z(1));
        assert!(o.ack(3, z(1)).is_empty(), "already committed");
        assert_eq!(o.last_committed(), z(1));
    }
}
