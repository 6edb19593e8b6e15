//! The snapshot bookkeeping every core needs: when to ask the driver for a snapshot, which one
//! to serve to peers that fall behind, and which one the state machine must be restored from.

use crate::types::{Position, Snapshot};

/// A core's snapshots: the latest it holds, one waiting to be restored, and a pending request.
#[derive(Clone, Debug, Default)]
pub struct Snapshots {
    threshold: u64,
    latest: Option<Snapshot>,
    restore: Option<Snapshot>,
    requested: bool,
}

impl Snapshots {
    /// Bookkeeping that asks for a snapshot every `threshold` applied entries (0: never),
    /// starting from what the node recovered (which the state machine must restore first).
    pub fn new(threshold: u64, recovered: Option<Snapshot>) -> Self {
        Snapshots {
            threshold,
            restore: recovered.clone(),
            latest: recovered,
            requested: false,
        }
    }

    /// The latest snapshot, to serve to a peer whose next entry is compacted.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.latest.as_ref()
    }

    /// True while a snapshot waits to be restored into the state machine.
    pub fn has_restore(&self) -> bool {
        self.restore.is_some()
    }

    /// Takes the snapshot the state machine must be restored from, if any (for `Ready::restore`).
    pub fn take_restore(&mut self) -> Option<Snapshot> {
        self.restore.take()
    }

    /// True when `applied_beyond` entries applied past the latest snapshot call for a new one
    /// and none is being taken.
    pub fn due(&self, applied_beyond: u64) -> bool {
        self.threshold > 0 && !self.requested && applied_beyond >= self.threshold
    }

    /// Asks for a snapshot at `at` if one is due (for `Ready::snapshot_at`).
    pub fn ask(&mut self, applied_beyond: u64, at: Position) -> Option<Position> {
        if !self.due(applied_beyond) {
            return None;
        }
        self.requested = true;
        Some(at)
    }

    /// The driver answered the request (accepted or not): a new one may be asked for.
    pub fn answered(&mut self) {
        self.requested = false;
    }

    /// The core compacted its log with this snapshot, taken from its own state machine.
    pub fn taken(&mut self, snapshot: Snapshot) {
        self.requested = false;
        self.latest = Some(snapshot);
    }

    /// The state machine must be rebuilt from the latest snapshot (the empty state without
    /// one), for example after a truncation below what it applied.
    pub fn restore_latest(&mut self) {
        self.restore = Some(
            self.latest
                .clone()
                .unwrap_or(Snapshot::new(Position::ZERO, Default::default())),
        );
    }

    /// A peer's snapshot replaced this node's state: serve it, and restore it first.
    pub fn installed(&mut self, snapshot: Snapshot) {
        self.requested = false;
        self.restore = Some(snapshot.clone());
        self.latest = Some(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn snap(seq: u64) -> Snapshot {
        Snapshot {
            last: Position::new(1, seq),
            data: Bytes::from_static(b"s"),
            members: None,
        }
    }

    #[test]
    fn asks_once_per_threshold_until_answered() {
        let mut s = Snapshots::new(10, None);
        assert_eq!(s.ask(9, Position::new(1, 9)), None);
        assert_eq!(s.ask(10, Position::new(1, 10)), Some(Position::new(1, 10)));
        assert_eq!(
            s.ask(20, Position::new(1, 20)),
            None,
            "one request at a time"
        );
        s.taken(snap(10));
        assert_eq!(s.latest(), Some(&snap(10)));
        assert_eq!(s.ask(10, Position::new(1, 20)), Some(Position::new(1, 20)));
        s.answered();
        assert!(s.due(10));
    }

    #[test]
    fn a_zero_threshold_never_asks() {
        let mut s = Snapshots::new(0, None);
        assert_eq!(s.ask(u64::MAX, Position::new(1, 1)), None);
    }

    #[test]
    fn recovered_and_installed_snapshots_are_restored_once() {
        let mut s = Snapshots::new(10, Some(snap(5)));
        assert!(s.has_restore());
        assert_eq!(s.take_restore(), Some(snap(5)));
        assert_eq!(s.take_restore(), None);
        s.installed(snap(8));
        assert_eq!(s.take_restore(), Some(snap(8)));
        assert_eq!(s.latest(), Some(&snap(8)));
    }
}
