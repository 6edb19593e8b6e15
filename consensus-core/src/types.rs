//! Protocol-neutral value types shared by every crate.

use crate::membership::Membership;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Identifies one node of a cluster; nodes are numbered `1..=n`.
pub type NodeId = u64;

/// An opaque client command, replicated byte for byte.
pub type Command = Bytes;

/// A point in time as seen by a driver: the time elapsed since the driver started.
///
/// Cores never read a clock; drivers pass `Time` into every call.
pub type Time = Duration;

/// A place in a replicated log: `(era, seq)`, compared lexicographically.
///
/// For Raft this is `(term, index)`, for ZAB the ZXID split into `(epoch, counter)`. Both
/// protocols' "more up-to-date log" rule is then the same comparison of last positions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Position {
    /// Raft term or ZAB epoch.
    pub era: u64,
    /// Raft log index or ZAB counter.
    pub seq: u64,
}

impl Position {
    /// The position before any entry: `(0, 0)`.
    pub const ZERO: Position = Position { era: 0, seq: 0 };

    /// Builds a position from its era and sequence number.
    pub const fn new(era: u64, seq: u64) -> Self {
        Position { era, seq }
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.era, self.seq)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.era, self.seq)
    }
}

/// What a log entry carries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A client command for the state machine.
    Command(Command),
    /// An entry with no effect on the state machine (Raft's no-op at the start of a term).
    Noop,
    /// A new cluster configuration (Raft's configuration entry, ZooKeeper's reconfig
    /// transaction); no effect on the state machine.
    Config(Box<Membership>),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Command(c) => write!(f, "Command({} bytes)", c.len()),
            Payload::Noop => write!(f, "Noop"),
            Payload::Config(m) => write!(f, "Config({m:?})"),
        }
    }
}

/// One entry of a replicated log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct Entry {
    /// Where the entry sits in the log.
    pub pos: Position,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// Builds an entry carrying a client command.
    pub fn command(pos: Position, command: Command) -> Self {
        Entry {
            pos,
            payload: Payload::Command(command),
        }
    }

    /// Builds a no-op entry.
    pub fn noop(pos: Position) -> Self {
        Entry {
            pos,
            payload: Payload::Noop,
        }
    }
}

/// The state machine as of a log position, standing in for every entry up to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Position of the last entry the snapshot includes.
    pub last: Position,
    /// The state machine's encoded state.
    pub data: Bytes,
    /// The cluster configuration in force at `last` (`None`: the one the cluster started with).
    pub members: Option<Box<Membership>>,
}

impl Snapshot {
    /// A snapshot of the state machine at `last`, its configuration not yet attached.
    pub fn new(last: Position, data: Bytes) -> Self {
        Snapshot {
            last,
            data,
            members: None,
        }
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot(last {}, {} bytes)", self.last, self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_compare_era_first_then_seq() {
        assert!(Position::new(2, 1) > Position::new(1, 100));
        assert!(Position::new(2, 5) > Position::new(2, 4));
        assert_eq!(Position::new(3, 3), Position::new(3, 3));
        assert!(Position::ZERO < Position::new(0, 1));
    }
}
