//! The apply cursor every core keeps: how far its state machine has applied the committed
//! log, how much since the last snapshot, and its snapshots (the latest, one to restore, and
//! a pending request). It fills the apply half of a [`Ready`].

use crate::replica::Ready;
use crate::snapshots::Snapshots;
use crate::types::{Entry, Position, Snapshot};

/// Where a core's state machine stands, and the snapshots behind it.
#[derive(Clone, Debug, Default)]
pub struct ApplyCursor {
    snapshots: Snapshots,
    applied: Position,
    /// Entries applied since the state machine last started from a snapshot or empty.
    applied_count: u64,
    /// `applied_count` at the latest snapshot of this state machine.
    snapshot_count: u64,
    /// The snapshot asked for, and `applied_count` at that point.
    asked: Option<(Position, u64)>,
}

impl ApplyCursor {
    /// A cursor at the recovered snapshot (or the start), asking for a snapshot every
    /// `threshold` applied entries (0: never); the state machine restores the snapshot first.
    pub fn new(threshold: u64, recovered: Option<Snapshot>) -> Self {
        ApplyCursor {
            applied: recovered.as_ref().map_or(Position::ZERO, |s| s.last),
            snapshots: Snapshots::new(threshold, recovered),
            applied_count: 0,
            snapshot_count: 0,
            asked: None,
        }
    }

    /// The snapshots: the latest one serves peers that fall behind.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The position of the last entry handed to the state machine.
    pub fn applied(&self) -> Position {
        self.applied
    }

    /// Entries applied beyond the latest snapshot.
    pub fn since_snapshot(&self) -> u64 {
        self.applied_count - self.snapshot_count
    }

    /// True when, with the log committed through `commit`, there is something to apply,
    /// restore or snapshot.
    pub fn has_ready(&self, commit: Position) -> bool {
        commit > self.applied
            || self.snapshots.has_restore()
            || self.snapshots.due(self.since_snapshot())
    }

    /// Fills `ready`'s apply half: the snapshot to restore, the entries committed after the
    /// cursor through `commit` (`entries(after, through)` reads them from the core's log), and
    /// a snapshot request when one is due.
    pub fn fill<M, H>(
        &mut self,
        ready: &mut Ready<M, H>,
        commit: Position,
        entries: impl FnOnce(Position, Position) -> Vec<Entry>,
    ) {
        ready.restore = self.snapshots.take_restore();
        if commit > self.applied {
            let committed = entries(self.applied, commit);
            self.applied_count += committed.len() as u64;
            self.applied = commit;
            ready.committed = committed;
        }
        ready.snapshot_at = self.snapshots.ask(self.since_snapshot(), self.applied);
        if let Some(at) = ready.snapshot_at {
            self.asked = Some((at, self.applied_count));
        }
    }

    /// The driver answered a snapshot request (whether or not the core accepts the snapshot).
    pub fn answered(&mut self) {
        self.snapshots.answered();
    }

    /// The core compacted its log with this snapshot of its own state machine: entries
    /// applied after the point it was asked for still count towards the next one.
    pub fn compacted(&mut self, snapshot: Snapshot) {
        self.snapshot_count = match self.asked.take() {
            Some((at, count)) if at == snapshot.last => count,
            _ => self.applied_count,
        };
        self.snapshots.taken(snapshot);
    }

    /// A peer's snapshot replaced this node's state: the state machine restores it next.
    pub fn installed(&mut self, snapshot: Snapshot) {
        self.applied = snapshot.last;
        self.restart_count();
        self.snapshots.installed(snapshot);
    }

    fn restart_count(&mut self) {
        self.applied_count = 0;
        self.snapshot_count = 0;
        self.asked = None;
    }

    /// The state machine must be rebuilt from the latest snapshot (the empty state without
    /// one), after a truncation below what it applied; the log after it is applied again.
    pub fn reload(&mut self) {
        // A snapshot asked for and not handed over yet would be of the state being replaced:
        // the driver drops it, and a new one may be asked for.
        self.snapshots.answered();
        self.snapshots.restore_latest();
        self.applied = self.snapshots.latest().map_or(Position::ZERO, |s| s.last);
        self.restart_count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn e(seq: u64) -> Entry {
        Entry::command(Position::new(1, seq), Bytes::new())
    }

    fn log(after: Position, through: Position) -> Vec<Entry> {
        (after.seq + 1..=through.seq).map(e).collect()
    }

    #[test]
    fn applies_each_committed_entry_once_and_asks_for_a_snapshot_at_the_threshold() {
        let mut c = ApplyCursor::new(3, None);
        assert!(!c.has_ready(Position::ZERO));
        assert!(c.has_ready(Position::new(1, 2)));
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 2), log);
        assert_eq!(r.committed, vec![e(1), e(2)]);
        assert_eq!(r.snapshot_at, None);
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 3), log);
        assert_eq!(r.committed, vec![e(3)]);
        assert_eq!(r.snapshot_at, Some(Position::new(1, 3)));
        assert_eq!(c.since_snapshot(), 3);
        c.answered();
        c.compacted(Snapshot {
            last: Position::new(1, 3),
            data: Bytes::new(),
            members: None,
        });
        assert_eq!(c.since_snapshot(), 0);
        assert!(!c.has_ready(Position::new(1, 3)));
    }

    #[test]
    fn entries_applied_after_the_request_count_towards_the_next_snapshot() {
        let mut c = ApplyCursor::new(2, None);
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 2), log);
        assert_eq!(r.snapshot_at, Some(Position::new(1, 2)));
        // More commits are handed out before the driver answers the request.
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 3), log);
        c.answered();
        c.compacted(Snapshot {
            last: Position::new(1, 2),
            data: Bytes::new(),
            members: None,
        });
        assert_eq!(c.since_snapshot(), 1);
    }

    #[test]
    fn an_installed_snapshot_moves_the_cursor_and_is_restored_then_reload_goes_back_to_it() {
        let snap = Snapshot {
            last: Position::new(2, 10),
            data: Bytes::from_static(b"s"),
            members: None,
        };
        let mut c = ApplyCursor::new(0, None);
        c.installed(snap.clone());
        assert_eq!(c.applied(), snap.last);
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(2, 12), log);
        assert_eq!(r.restore, Some(snap.clone()));
        assert_eq!(r.committed, vec![e(11), e(12)]);
        c.reload();
        assert_eq!(c.applied(), snap.last);
        assert!(c.has_ready(Position::new(2, 10)), "the restore is pending");
    }

    #[test]
    fn a_reload_while_a_snapshot_is_being_taken_lets_a_new_one_be_asked_for() {
        let mut c = ApplyCursor::new(2, None);
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 2), log);
        assert_eq!(r.snapshot_at, Some(Position::new(1, 2)));
        // The driver is still encoding that snapshot when a truncation replaces the state:
        // it drops the snapshot, so the cursor must not wait for it forever.
        c.reload();
        let mut r: Ready<(), ()> = Ready::default();
        c.fill(&mut r, Position::new(1, 2), log);
        assert_eq!(r.snapshot_at, Some(Position::new(1, 2)));
    }

    #[test]
    fn a_recovered_snapshot_is_where_the_cursor_starts() {
        let snap = Snapshot {
            last: Position::new(1, 5),
            data: Bytes::new(),
            members: None,
        };
        let c = ApplyCursor::new(0, Some(snap.clone()));
        assert_eq!(c.applied(), snap.last);
        assert_eq!(c.snapshots().latest(), Some(&snap));
    }
}
