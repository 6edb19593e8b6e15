//! A ZAB server's transaction log: an optional snapshot, then proposals in zxid order.

use crate::zxid::Zxid;
use consensus_core::{Entry, Position};

/// Logged proposals after the snapshot's last zxid, strictly increasing.
#[derive(Clone, Debug, Default)]
pub struct ZabLog {
    snapshot: Zxid,
    entries: Vec<Entry>,
}

impl ZabLog {
    /// A log whose snapshot ends at `snapshot` (zero for none) followed by `entries`.
    pub fn from_parts(snapshot: Zxid, entries: Vec<Entry>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].pos < w[1].pos));
        ZabLog { snapshot, entries }
    }

    /// The last zxid the snapshot covers (zero without one).
    pub fn snapshot_zxid(&self) -> Zxid {
        self.snapshot
    }

    /// The last logged zxid (`getLastLoggedZxid`).
    pub fn last_zxid(&self) -> Zxid {
        self.entries
            .last()
            .and_then(|e| Zxid::from_position(e.pos))
            .unwrap_or(self.snapshot)
    }

    /// The logged entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries with zxids in `(after, upto]`.
    pub fn range(&self, after: Zxid, upto: Zxid) -> &[Entry] {
        let a = self.first_after(after);
        let b = self.first_after(upto);
        &self.entries[a..b.max(a)]
    }

    /// The logged entry at `zxid`, if the log holds it.
    pub fn get(&self, zxid: Zxid) -> Option<&Entry> {
        let i = self.first_after(zxid);
        i.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .filter(|e| e.pos == zxid.position())
    }

    /// Index of the first entry after `zxid`. Callers ask about recent zxids (commits,
    /// applies), so this walks back from the end: O(entries after `zxid`).
    fn first_after(&self, zxid: Zxid) -> usize {
        let p = zxid.position();
        let newer = self.entries.iter().rev().take_while(|e| e.pos > p).count();
        self.entries.len() - newer
    }

    /// Appends an entry after the last one.
    pub fn push(&mut self, entry: Entry) {
        debug_assert!(entry.pos > self.last_zxid().position());
        self.entries.push(entry);
    }

    /// Drops every entry after `zxid`.
    pub fn truncate_after(&mut self, zxid: Zxid) {
        let keep = self.entries.partition_point(|e| e.pos <= zxid.position());
        self.entries.truncate(keep);
    }

    /// Drops entries up to `zxid`, which a snapshot now covers.
    pub fn compact(&mut self, zxid: Zxid) {
        let drop = self.entries.partition_point(|e| e.pos <= zxid.position());
        self.entries.drain(..drop);
        self.snapshot = self.snapshot.max(zxid);
    }

    /// Replaces the whole log with a snapshot ending at `zxid`.
    pub fn reset_to(&mut self, zxid: Zxid) {
        self.entries.clear();
        self.snapshot = zxid;
    }

    /// The position of an entry, for the protocol-neutral status.
    pub fn last_position(&self) -> Position {
        self.last_zxid().position()
    }
}
