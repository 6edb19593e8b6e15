//! The in-memory copy of a node's Raft log: an optional snapshot, then entries.

use consensus_core::{Entry, Position};

/// A Raft log: a snapshot standing in for indexes `1..=snapshot_index()`, then the entries at
/// `snapshot_index() + 1 ..= last_index()`, each with the term it was created in.
#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    snapshot: Position,
    entries: Vec<Entry>,
    /// The last index known to be on this node's disk: a leader counts itself for a commit
    /// only through it, since it writes its log while its followers write theirs.
    durable: u64,
}

impl RaftLog {
    /// A log whose snapshot ends at `snapshot` (`Position::ZERO` for none) followed by `entries`,
    /// which must sit at consecutive indexes right after it.
    pub fn from_parts(snapshot: Position, entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.pos.seq == snapshot.seq + i as u64 + 1));
        let durable = snapshot.seq + entries.len() as u64;
        RaftLog {
            snapshot,
            entries,
            durable,
        }
    }

    /// The last index this node's disk holds for sure (see [`RaftLog::mark_durable`]).
    pub fn durable_index(&self) -> u64 {
        self.durable.min(self.last_index())
    }

    /// The driver made the log durable through `through`; a position the log no longer holds
    /// (truncated and rewritten since) says nothing.
    pub fn mark_durable(&mut self, through: Position) {
        if self.term_at(through.seq) == Some(through.era) {
            self.durable = self.durable.max(through.seq);
        }
    }

    /// Position (term, index) of the last entry the snapshot covers.
    pub fn snapshot_position(&self) -> Position {
        self.snapshot
    }

    /// Index of the last entry the snapshot covers (0 without a snapshot).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.seq
    }

    /// Index of the last entry (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.snapshot.seq + self.entries.len() as u64
    }

    /// Term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot.era, |e| e.pos.era)
    }

    /// Position (term, index) of the last entry.
    pub fn last_position(&self) -> Position {
        Position::new(self.last_term(), self.last_index())
    }

    /// True if `index` is covered by the snapshot (its entry is gone, its term may be too).
    pub fn is_compacted(&self, index: u64) -> bool {
        index < self.snapshot.seq
    }

    /// Term of the entry at `index`: 0 for index 0, the snapshot's term at its last index;
    /// `None` past the end or inside the snapshot.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.seq {
            return Some(self.snapshot.era);
        }
        self.get(index).map(|e| e.pos.era)
    }

    /// Position of the entry at `index`, where [`RaftLog::term_at`] knows it.
    pub fn position_at(&self, index: u64) -> Option<Position> {
        self.term_at(index).map(|t| Position::new(t, index))
    }

    /// The entry at `index`, if the log still holds it.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot.seq {
            return None;
        }
        self.entries.get((index - self.snapshot.seq - 1) as usize)
    }

    /// Entries in `from..=to`, clamped to what the log holds.
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        let from = from.max(self.snapshot.seq + 1);
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        let base = self.snapshot.seq + 1;
        &self.entries[(from - base) as usize..=(to - base) as usize]
    }

    /// Appends one entry at `last_index() + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.pos.seq, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Drops entries after `index` (which must not be inside the snapshot).
    pub fn truncate_after(&mut self, index: u64) {
        debug_assert!(index >= self.snapshot.seq);
        self.entries.truncate((index - self.snapshot.seq) as usize);
        self.durable = self.durable.min(index);
    }

    /// Drops the entries up to `upto`, which a snapshot now covers.
    pub fn compact(&mut self, upto: Position) {
        if upto.seq <= self.snapshot.seq {
            return;
        }
        let n = ((upto.seq - self.snapshot.seq) as usize).min(self.entries.len());
        self.entries.drain(..n);
        self.snapshot = upto;
    }

    /// Installs a snapshot ending at `last`: entries after it are kept if the log agrees with
    /// it at `last`, otherwise the whole log is replaced (section 7). Returns whether entries
    /// were discarded because they disagreed.
    pub fn install(&mut self, last: Position) -> bool {
        if self.term_at(last.seq) == Some(last.era) {
            self.compact(last);
            false
        } else {
            self.entries.clear();
            self.snapshot = last;
            self.durable = self.durable.min(last.seq);
            true
        }
    }

    /// The first index holding an entry of `term`, searching back from `from`.
    pub fn first_index_of_term(&self, term: u64, from: u64) -> u64 {
        let mut i = from.min(self.last_index());
        while i > self.snapshot.seq + 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if any.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        // Terms never decrease along the log, so search from the end.
        let mut i = self.last_index();
        while i >= self.snapshot.seq && i > 0 {
            let t = self.term_at(i)?;
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i -= 1;
        }
        None
    }

    /// True if a log ending at `(last_log_term, last_log_index)` is at least as up-to-date as
    /// this one (section 5.4.1): compare last terms, then last indexes.
    pub fn is_up_to_date(&self, last_log_term: u64, last_log_index: u64) -> bool {
        Position::new(last_log_term, last_log_index) >= self.last_position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn e(t: u64, i: u64) -> Entry {
        Entry::command(Position::new(t, i), Bytes::new())
    }

    #[test]
    fn indexes_continue_after_the_snapshot() {
        let log = RaftLog::from_parts(Position::new(2, 10), vec![e(2, 11), e(3, 12)]);
        assert_eq!(log.last_index(), 12);
        assert_eq!(log.term_at(10), Some(2));
        assert_eq!(log.term_at(9), None);
        assert!(log.is_compacted(9));
        assert_eq!(log.term_at(12), Some(3));
        assert_eq!(log.slice(1, 100).len(), 2);
        assert_eq!(log.last_index_of_term(2), Some(11));
        assert_eq!(log.first_index_of_term(3, 12), 12);
    }

    #[test]
    fn compaction_keeps_the_suffix() {
        let mut log = RaftLog::from_parts(Position::ZERO, (1..=5).map(|i| e(1, i)).collect());
        log.compact(Position::new(1, 3));
        assert_eq!(log.snapshot_index(), 3);
        assert_eq!(
            log.slice(1, 10)
                .iter()
                .map(|x| x.pos.seq)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(log.last_position(), Position::new(1, 5));
    }

    #[test]
    fn installing_a_snapshot_keeps_agreeing_entries_and_drops_disagreeing_ones() {
        let mut log = RaftLog::from_parts(Position::ZERO, (1..=5).map(|i| e(1, i)).collect());
        assert!(!log.install(Position::new(1, 3)));
        assert_eq!(log.last_index(), 5);
        let mut log = RaftLog::from_parts(Position::ZERO, (1..=5).map(|i| e(1, i)).collect());
        assert!(log.install(Position::new(2, 4)));
        assert_eq!(log.last_position(), Position::new(2, 4));
        assert!(log.slice(1, 10).is_empty());
    }
}
