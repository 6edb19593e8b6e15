//! The in-memory copy of a node's Raft log, indexed from 1.

use consensus_core::{Entry, Position};

/// A Raft log: entries at indexes `1..=last_index()`, each with the term it was created in.
#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log holding `entries`, which must sit at indexes 1, 2, 3, ...
    pub fn from_entries(entries: Vec<Entry>) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.pos.seq == i as u64 + 1));
        RaftLog { entries }
    }

    /// Index of the last entry (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.pos.era)
    }

    /// Position (term, index) of the last entry.
    pub fn last_position(&self) -> Position {
        Position::new(self.last_term(), self.last_index())
    }

    /// Term of the entry at `index`; 0 for index 0; `None` past the end.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.pos.era)
    }

    /// Position of the entry at `index` (index 0 is `(0, 0)`).
    pub fn position_at(&self, index: u64) -> Option<Position> {
        self.term_at(index).map(|t| Position::new(t, index))
    }

    /// The entry at `index`.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// Entries in `from..=to`, clamped to the log.
    pub fn slice(&self, from: u64, to: u64) -> &[Entry] {
        let from = from.max(1);
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        &self.entries[from as usize - 1..to as usize]
    }

    /// Appends one entry at `last_index() + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.pos.seq, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Drops entries after `index`.
    pub fn truncate_after(&mut self, index: u64) {
        self.entries.truncate(index as usize);
    }

    /// The first index holding an entry of `term` (searching back from `from`).
    pub fn first_index_of_term(&self, term: u64, from: u64) -> u64 {
        let mut i = from.min(self.last_index());
        while i > 1 && self.term_at(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if any.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        // Terms never decrease along the log, so search from the end.
        let mut i = self.last_index();
        while i > 0 {
            let t = self.term_at(i).unwrap_or(0);
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
