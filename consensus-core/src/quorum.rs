//! Quorums, counted once for every protocol: a majority of one voter set, or of two at once
//! (a joint configuration, as Raft's membership change needs).

use crate::types::NodeId;

/// A set of voters and its majority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Majority {
    /// Sorted, without duplicates.
    voters: Vec<NodeId>,
}

impl Majority {
    /// The majority of `voters` (order and duplicates do not matter).
    pub fn new(voters: &[NodeId]) -> Self {
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        Majority { voters }
    }

    /// The voters, sorted.
    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    /// True if `id` votes.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    /// Position of `id` among the sorted voters (for bit sets of acknowledgements).
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.voters.binary_search(&id).ok()
    }

    /// How many voters make a majority.
    pub fn size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// True when the distinct voters among `ids` are a majority (non-voters do not count).
    pub fn is_reached(&self, ids: impl IntoIterator<Item = NodeId>) -> bool {
        let mut seen: Vec<NodeId> = ids.into_iter().filter(|&id| self.contains(id)).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() >= self.size()
    }

    /// The highest value that a majority of voters has reached, given each voter's value
    /// (Raft: the highest index stored on a majority, from each voter's match index).
    pub fn committed(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        let n = self.voters.len();
        if n == 0 {
            return 0;
        }
        // A leader asks after every acknowledgement: small configurations need no allocation.
        let mut small = [0u64; 16];
        let mut large = Vec::new();
        let values: &mut [u64] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        for (v, &id) in values.iter_mut().zip(&self.voters) {
            *v = value_of(id);
        }
        // The size-th highest value: reached by `size` voters.
        *values
            .select_nth_unstable_by(self.size() - 1, |a, b| b.cmp(a))
            .1
    }
}

/// The quorum of a configuration: one majority, or during a change a majority of the old voters
/// and a majority of the new ones together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    incoming: Majority,
    outgoing: Option<Majority>,
}

impl Quorum {
    /// A simple majority of `voters`.
    pub fn majority(voters: &[NodeId]) -> Self {
        Quorum {
            incoming: Majority::new(voters),
            outgoing: None,
        }
    }

    /// A joint configuration: decisions need a majority of `old` and a majority of `new`.
    pub fn joint(old: &[NodeId], new: &[NodeId]) -> Self {
        Quorum {
            incoming: Majority::new(new),
            outgoing: Some(Majority::new(old)),
        }
    }

    /// The majority of the (incoming) voter set.
    pub fn incoming(&self) -> &Majority {
        &self.incoming
    }

    /// Each voter set whose majority a decision needs (one, or two while joint).
    pub fn majorities(&self) -> impl Iterator<Item = &Majority> {
        std::iter::once(&self.incoming).chain(self.outgoing.as_ref())
    }

    /// Every voter of either set, sorted.
    pub fn voters(&self) -> Vec<NodeId> {
        let mut all = self.incoming.voters.clone();
        if let Some(o) = &self.outgoing {
            all.extend_from_slice(&o.voters);
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    /// True if `id` votes in either set.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.as_ref().is_some_and(|o| o.contains(id))
    }

    /// True when `ids` hold a majority of every voter set.
    pub fn is_reached(&self, ids: impl IntoIterator<Item = NodeId>) -> bool {
        let ids: Vec<NodeId> = ids.into_iter().collect();
        self.incoming.is_reached(ids.iter().copied())
            && self
                .outgoing
                .as_ref()
                .is_none_or(|o| o.is_reached(ids.iter().copied()))
    }

    /// The highest value a majority of every voter set has reached.
    pub fn committed(&self, value_of: impl Fn(NodeId) -> u64) -> u64 {
        let a = self.incoming.committed(&value_of);
        match &self.outgoing {
            Some(o) => a.min(o.committed(&value_of)),
            None => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_counts_distinct_voters_only() {
        let m = Majority::new(&[3, 1, 2, 2, 5, 4]);
        assert_eq!(m.voters(), &[1, 2, 3, 4, 5]);
        assert_eq!(m.size(), 3);
        assert!(!m.is_reached([1, 2, 2, 2]));
        assert!(!m.is_reached([1, 2, 9]), "9 is not a voter");
        assert!(m.is_reached([5, 1, 2]));
        assert_eq!(m.index_of(4), Some(3));
        assert_eq!(m.index_of(6), None);
    }

    #[test]
    fn committed_is_the_highest_value_a_majority_reached() {
        let m = Majority::new(&[1, 2, 3, 4, 5]);
        let matched = [0, 9, 7, 7, 3, 1];
        assert_eq!(m.committed(|id| matched[id as usize]), 7);
        let m = Majority::new(&[1, 2, 3, 4]);
        assert_eq!(m.committed(|id| matched[id as usize]), 7, "3 of 4");
        // More voters than fit on the stack: 11 of 20 have reached 10 or more.
        let ids: Vec<NodeId> = (1..=20).collect();
        assert_eq!(Majority::new(&ids).committed(|id| 21 - id), 10);
        assert_eq!(Majority::new(&[]).committed(|_| 5), 0);
    }

    #[test]
    fn a_joint_quorum_needs_both_majorities() {
        let q = Quorum::joint(&[1, 2, 3], &[3, 4, 5]);
        assert_eq!(q.voters(), vec![1, 2, 3, 4, 5]);
        assert!(!q.is_reached([1, 2, 3]), "old only");
        assert!(!q.is_reached([3, 4, 5]), "new only");
        assert!(q.is_reached([2, 3, 4]));
        let matched = [0, 10, 10, 6, 2, 2];
        // Old {1,2,3}: 10; new {3,4,5}: 2.
        assert_eq!(q.committed(|id| matched[id as usize]), 2);
        let single = Quorum::majority(&[1, 2, 3]);
        assert_eq!(single.committed(|id| matched[id as usize]), 10);
        assert!(single.is_reached([1, 3]));
    }
}
