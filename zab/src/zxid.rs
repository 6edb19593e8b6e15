//! ZooKeeper transaction ids (`ZxidUtils`): epoch in the high 32 bits, counter in the low 32.

use consensus_core::Position;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A ZooKeeper transaction id, ordered as one 64-bit number: epoch first, then counter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Zxid(pub u64);

impl Zxid {
    /// The largest counter ZooKeeper ever proposes is one less than this (ZOOKEEPER-1277).
    pub const COUNTER_LIMIT: u32 = u32::MAX;

    /// The zxid `(epoch, counter)`.
    pub const fn new(epoch: u32, counter: u32) -> Self {
        Zxid(((epoch as u64) << 32) | counter as u64)
    }

    /// The epoch marker `(epoch, 0)` a new leader starts its epoch at.
    pub const fn epoch_marker(epoch: u32) -> Self {
        Zxid::new(epoch, 0)
    }

    /// The epoch (high 32 bits).
    pub const fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The counter (low 32 bits).
    pub const fn counter(self) -> u32 {
        self.0 as u32
    }

    /// True for `(epoch, 0)`, which marks an epoch and never names a proposal.
    pub const fn is_epoch_marker(self) -> bool {
        self.counter() == 0
    }

    /// The next zxid of the same epoch, or `None` when the counter would reach `limit`: the
    /// leader must then give up so that a new epoch starts.
    pub fn next_in_epoch(self, limit: u32) -> Option<Zxid> {
        let c = self.counter().checked_add(1)?;
        (c < limit).then(|| Zxid::new(self.epoch(), c))
    }

    /// The protocol-neutral position `(epoch, counter)`.
    pub const fn position(self) -> Position {
        Position::new(self.epoch() as u64, self.counter() as u64)
    }

    /// The zxid of a position, if its parts fit in 32 bits each.
    pub fn from_position(p: Position) -> Option<Zxid> {
        Some(Zxid::new(
            u32::try_from(p.era).ok()?,
            u32::try_from(p.seq).ok()?,
        ))
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x} ({}, {})", self.0, self.epoch(), self.counter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_the_high_half_and_counter_the_low_half() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.0, 0x0000_0003_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
    }

    #[test]
    fn ordering_is_epoch_first_then_counter() {
        assert!(Zxid::new(2, 0) > Zxid::new(1, u32::MAX));
        assert!(Zxid::new(2, 5) > Zxid::new(2, 4));
        // The same order as the protocol-neutral position.
        assert!(Zxid::new(2, 0).position() > Zxid::new(1, u32::MAX).position());
    }

    #[test]
    fn a_new_epoch_starts_at_its_marker_and_proposes_from_counter_one() {
        let m = Zxid::epoch_marker(4);
        assert!(m.is_epoch_marker());
        assert_eq!(m.next_in_epoch(Zxid::COUNTER_LIMIT), Some(Zxid::new(4, 1)));
    }

    #[test]
    fn the_counter_never_reaches_the_limit() {
        assert_eq!(
            Zxid::new(1, u32::MAX - 2).next_in_epoch(Zxid::COUNTER_LIMIT),
            Some(Zxid::new(1, u32::MAX - 1))
        );
        assert_eq!(
            Zxid::new(1, u32::MAX - 1).next_in_epoch(Zxid::COUNTER_LIMIT),
            None
        );
        // A lower limit, so tests can reach the overflow quickly.
        assert_eq!(Zxid::new(1, 9).next_in_epoch(10), None);
    }

    #[test]
    fn positions_round_trip() {
        let z = Zxid::new(9, 12);
        assert_eq!(Zxid::from_position(z.position()), Some(z));
        assert_eq!(Zxid::from_position(Position::new(1 << 40, 0)), None);
    }
}
