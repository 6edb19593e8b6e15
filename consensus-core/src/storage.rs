//! Durable storage for a core: the log and the hard state, behind one async trait.

use crate::replica::PersistOp;
use crate::types::{Entry, Position, Snapshot};
use async_trait::async_trait;

/// What a node finds on its disk when it starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered<H> {
    /// The last durable hard state (the default when none was ever written).
    pub hard_state: H,
    /// The latest durable snapshot, if any; `entries` follow it.
    pub snapshot: Option<Snapshot>,
    /// The durable log, in position order.
    pub entries: Vec<Entry>,
}

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operation would break the log's order (e.g. appending at or before the last position).
    #[error("log order violated: {0}")]
    Order(String),
    /// The underlying device failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data is damaged where dropping it could lose acknowledged entries.
    #[error("corrupt log: {} at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file.
        file: std::path::PathBuf,
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The data was written in another encoding ([`crate::codec::FORMAT_VERSION`]).
    #[error("{} holds data of format {found}; this build reads format {expected} (keep the data with the build that wrote it, or start this node on an empty directory and let it catch up)", dir.display())]
    Format {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The format found there.
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
}

/// A durable log plus hard state, written by a driver on behalf of a core.
///
/// [`LogStore::write`] buffers; only [`LogStore::sync`] makes writes durable. What a crash
/// leaves is the contract every store keeps and every core relies on: the state as of the last
/// completed sync, plus **a prefix** of the operations written since, in order, where the last
/// operation of that prefix may be cut short: an `Append` after any of its entries, a
/// `TruncateAfter` after dropping only part of the tail it drops (the log shortened from its
/// end, never with a hole). A `Ready`'s persist
/// operations are therefore not crash-atomic: a core orders them so that every prefix is safe
/// (ZAB's SNAP stores the snapshot before it drops the log after it). [`MemLogStore::crash_keeping`]
/// models exactly this; `FileLog` performs its steps in order and makes a truncation durable
/// before anything written after it.
///
/// One relaxation: a `Snapshot` whose last position is an entry the log holds only compacts
/// it, and may become durable after operations written later (appends, hard states,
/// truncations above it), as long as every entry it covers stays until it is durable: a crash
/// then leaves the previous snapshot and those entries, the same state. Even a completed sync
/// may leave that snapshot out. `FileLog` writes such a snapshot on a thread of its own.
#[async_trait]
pub trait LogStore<H: Send + Sync>: Send {
    /// Buffers the given changes, in order.
    async fn write(&mut self, ops: &[PersistOp<H>]) -> Result<(), StorageError>;
    /// Makes every buffered change durable.
    async fn sync(&mut self) -> Result<(), StorageError>;
    /// Reads back the durable state.
    async fn recover(&mut self) -> Result<Recovered<H>, StorageError>;
}

/// An in-memory [`LogStore`] that models a disk cache: unsynced writes vanish on [`MemLogStore::crash`].
#[derive(Clone, Debug, Default)]
pub struct MemLogStore<H> {
    durable: Recovered<H>,
    pending: Vec<PersistOp<H>>,
}

impl<H: Clone> MemLogStore<H> {
    /// An empty store.
    pub fn new() -> Self
    where
        H: Default,
    {
        MemLogStore {
            durable: Recovered::default(),
            pending: Vec::new(),
        }
    }

    /// Drops every write that was not synced, as a power failure would.
    pub fn crash(&mut self) {
        self.pending.clear();
    }

    /// Operations written since the last sync.
    pub fn pending_ops(&self) -> usize {
        self.pending.len()
    }

    /// A power failure partway through a sync: the first `ops` unsynced operations reach the
    /// disk, then part of the next one: the first `entries` entries of an append, or the last
    /// `entries` of the entries a truncation drops; the rest is lost. A store that fails to
    /// apply them (an order violation) keeps what it had.
    pub fn crash_keeping(&mut self, ops: usize, entries: usize) {
        let mut pending = std::mem::take(&mut self.pending).into_iter();
        let mut durable = self.durable.clone();
        for op in pending.by_ref().take(ops) {
            if Self::apply(&mut durable, op).is_err() {
                return;
            }
        }
        match pending.next() {
            Some(PersistOp::Append(mut es)) => {
                es.truncate(entries);
                if Self::apply(&mut durable, PersistOp::Append(es)).is_err() {
                    return;
                }
            }
            Some(PersistOp::TruncateAfter(_)) => {
                let keep = durable.entries.len().saturating_sub(entries);
                durable.entries.truncate(keep);
            }
            _ => {}
        }
        self.durable = durable;
    }

    /// How far the `index`-th unsynced operation can be cut short: the entries of an append,
    /// or the entries a truncation would drop (0 for anything else).
    pub fn pending_entries(&self, index: usize) -> usize {
        match self.pending.get(index) {
            Some(PersistOp::Append(es)) => es.len(),
            Some(PersistOp::TruncateAfter(pos)) => {
                let mut durable = self.durable.clone();
                for op in self.pending.iter().take(index) {
                    if Self::apply(&mut durable, op.clone()).is_err() {
                        return 0;
                    }
                }
                durable.entries.iter().filter(|e| e.pos > *pos).count()
            }
            _ => 0,
        }
    }

    /// The durable state, without the unsynced writes.
    pub fn durable(&self) -> &Recovered<H> {
        &self.durable
    }

    /// Writes operations it owns: what [`LogStore::write`] does, without copying them and
    /// without a future (the simulator's path).
    pub fn write_owned(&mut self, ops: Vec<PersistOp<H>>) {
        self.pending.extend(ops);
    }

    /// Makes every write durable, in order: what [`LogStore::sync`] does, without a future.
    pub fn sync_now(&mut self) -> Result<(), StorageError> {
        for op in std::mem::take(&mut self.pending) {
            Self::apply(&mut self.durable, op)?;
        }
        Ok(())
    }

    fn apply(durable: &mut Recovered<H>, op: PersistOp<H>) -> Result<(), StorageError> {
        match op {
            PersistOp::HardState(h) => durable.hard_state = h,
            PersistOp::Append(entries) => {
                let mut last = durable
                    .entries
                    .last()
                    .map(|e| e.pos)
                    .unwrap_or(Position::ZERO);
                for e in &entries {
                    if e.pos <= last {
                        return Err(StorageError::Order(format!(
                            "append of {} after {}",
                            e.pos, last
                        )));
                    }
                    last = e.pos;
                }
                durable.entries.extend(entries);
            }
            PersistOp::TruncateAfter(pos) => {
                let keep = durable.entries.partition_point(|e| e.pos <= pos);
                durable.entries.truncate(keep);
            }
            PersistOp::Snapshot(snap) => {
                if durable
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| snap.last < s.last)
                {
                    // An older snapshot than the stored one is ignored (as `FileLog` does).
                    return Ok(());
                }
                let drop = durable.entries.partition_point(|e| e.pos <= snap.last);
                durable.entries.drain(..drop);
                durable.snapshot = Some(snap);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<H: Clone + Send + Sync> LogStore<H> for MemLogStore<H> {
    async fn write(&mut self, ops: &[PersistOp<H>]) -> Result<(), StorageError> {
        self.pending.extend(ops.iter().cloned());
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), StorageError> {
        self.sync_now()
    }

    async fn recover(&mut self) -> Result<Recovered<H>, StorageError> {
        Ok(self.durable.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::now_or_never;
    use bytes::Bytes;

    fn e(era: u64, seq: u64) -> Entry {
        Entry::command(Position::new(era, seq), Bytes::from(format!("{era}.{seq}")))
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        now_or_never(f).expect("in-memory store never waits")
    }

    #[test]
    fn synced_writes_survive_a_crash_and_unsynced_ones_do_not() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[
            PersistOp::HardState(4),
            PersistOp::Append(vec![e(1, 1), e(1, 2)]),
        ]))
        .unwrap();
        run(s.sync()).unwrap();
        run(s.write(&[PersistOp::HardState(5), PersistOp::Append(vec![e(1, 3)])])).unwrap();
        s.crash();
        let r = run(s.recover()).unwrap();
        assert_eq!(r.hard_state, 4);
        assert_eq!(r.entries, vec![e(1, 1), e(1, 2)]);
    }

    #[test]
    fn a_crash_mid_sync_keeps_a_prefix_of_the_unsynced_operations() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[PersistOp::Append(vec![e(1, 1)])])).unwrap();
        run(s.sync()).unwrap();
        run(s.write(&[
            PersistOp::HardState(7),
            PersistOp::Append(vec![e(1, 2), e(1, 3), e(1, 4)]),
            PersistOp::HardState(8),
        ]))
        .unwrap();
        assert_eq!(s.pending_ops(), 3);
        assert_eq!(s.pending_entries(1), 3);
        s.crash_keeping(1, 2);
        let r = run(s.recover()).unwrap();
        assert_eq!(r.hard_state, 7);
        assert_eq!(r.entries, vec![e(1, 1), e(1, 2), e(1, 3)]);
        assert_eq!(s.pending_ops(), 0);
    }

    #[test]
    fn a_crash_mid_truncation_shortens_the_log_from_its_end() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[PersistOp::Append(vec![e(1, 1), e(1, 2), e(1, 3), e(1, 4)])])).unwrap();
        run(s.sync()).unwrap();
        run(s.write(&[PersistOp::TruncateAfter(Position::new(1, 1))])).unwrap();
        assert_eq!(s.pending_entries(0), 3);
        s.crash_keeping(0, 2);
        assert_eq!(run(s.recover()).unwrap().entries, vec![e(1, 1), e(1, 2)]);
    }

    #[test]
    fn truncate_after_keeps_entries_up_to_the_position() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[PersistOp::Append(vec![e(1, 1), e(1, 2), e(2, 3)])])).unwrap();
        run(s.write(&[
            PersistOp::TruncateAfter(Position::new(1, 2)),
            PersistOp::Append(vec![e(3, 3)]),
        ]))
        .unwrap();
        run(s.sync()).unwrap();
        assert_eq!(
            run(s.recover()).unwrap().entries,
            vec![e(1, 1), e(1, 2), e(3, 3)]
        );
    }

    #[test]
    fn snapshot_replaces_the_prefix_it_covers_and_survives_a_crash() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[PersistOp::Append(vec![e(1, 1), e(1, 2), e(2, 3), e(2, 4)])])).unwrap();
        let snap = Snapshot {
            last: Position::new(2, 3),
            data: Bytes::from_static(b"state"),
            members: None,
        };
        run(s.write(&[PersistOp::Snapshot(snap.clone())])).unwrap();
        run(s.sync()).unwrap();
        s.crash();
        let r = run(s.recover()).unwrap();
        assert_eq!(r.snapshot, Some(snap));
        assert_eq!(r.entries, vec![e(2, 4)]);
        // Appends continue after the snapshot even when the log behind it is empty.
        run(s.write(&[
            PersistOp::TruncateAfter(Position::new(2, 3)),
            PersistOp::Append(vec![e(3, 4)]),
        ]))
        .unwrap();
        run(s.sync()).unwrap();
        assert_eq!(run(s.recover()).unwrap().entries, vec![e(3, 4)]);
        run(s.write(&[PersistOp::Append(vec![e(1, 1)])])).unwrap();
        assert!(
            run(s.sync()).is_err(),
            "nothing may be appended before the snapshot"
        );
    }

    #[test]
    fn out_of_order_append_is_refused() {
        let mut s: MemLogStore<u64> = MemLogStore::new();
        run(s.write(&[PersistOp::Append(vec![e(2, 2), e(1, 3)])])).unwrap();
        assert!(matches!(run(s.sync()), Err(StorageError::Order(_))));
    }
}
