//! A [`LogStore`] on disk: segment files of checksummed records, plus atomically replaced
//! hard-state and snapshot files.
//!
//! Layout of a data directory:
//! - `NNNNNNNNNNNNNNNNNNNN.log`: log segments, numbered in order. Each holds records framed as
//!   `len: u32 LE | crc32(payload): u32 LE | payload`, one encoded [`Entry`] per record. A segment
//!   is closed once it passes the segment size; truncation cuts a segment and deletes later ones.
//!   The last segment may end in zeros: space written ahead of the records (below).
//! - `hardstate`, `snapshot`: one framed record each, replaced by writing a temporary file,
//!   fsyncing it, renaming it over the old one and fsyncing the directory.
//!
//! [`LogStore::write`] only plans the changes; [`LogStore::sync`] performs them in the order
//! they were written and fsyncs, so a crash in the middle never makes a later change durable
//! before an earlier one (ZAB relies on its transactions being durable before currentEpoch).
//!
//! One exception to that order, for speed: a snapshot that only compacts the log (its last
//! position is an entry the log holds) is written on a thread of its own while the node goes
//! on, because the entries it covers stay on disk until it is durable: the segments it covers
//! are deleted only then, and a truncation, a removal or another snapshot waits for it first.
//! A crash before it is durable finds the previous snapshot and every entry after it, which
//! is the same state. A snapshot that replaces entries (a leader's, installed) is written in
//! order, as everything else.
//!
//! Space ahead, for speed: appends to a segment write zeros [`PREALLOC_BYTES`] at a time ahead
//! of the records (up to the segment size), as ZooKeeper and etcd preallocate their logs. An
//! `fdatasync` that finds the file's size unchanged writes the data and flushes the disk; one
//! that finds it grown must first write the inode as well, a second synchronous write (on this
//! project's machine a batch's `fdatasync` took 0.18 ms when it grew the file, 0.13 ms when not).
//! So only one `fdatasync` per [`PREALLOC_BYTES`] pays for the size.
//!
//! Recovery truncates a torn or corrupt record at the tail of the last segment (with a
//! warning) and refuses to start, naming the file and offset, when a bad record has valid
//! records after it or sits in an earlier segment: that would drop acknowledged entries. Zeros
//! to the end of the last segment are the space written ahead: the log ends where they start,
//! and they stay for the appends to come.

use async_trait::async_trait;
use consensus_core::codec;
use consensus_core::{Entry, LogStore, PersistOp, Position, Recovered, Snapshot, StorageError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod record;

use record::{
    frame_into, fsync_dir, parse_at, read_atomic, segment_name, valid_record_after, write_atomic,
    write_atomic_parts, Parsed,
};

/// Bytes of a record's header: length and CRC32.
pub const RECORD_HEADER_BYTES: usize = 8;
/// Default size after which the active segment is closed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// How far ahead of its records a segment is filled with zeros (see the module documentation).
pub const PREALLOC_BYTES: u64 = 1024 * 1024;
const HARD_STATE_FILE: &str = "hardstate";
const SNAPSHOT_FILE: &str = "snapshot";
const SEGMENT_SUFFIX: &str = ".log";
/// The file that names the encoding of everything in the directory.
pub const FORMAT_FILE: &str = "FORMAT";

/// Refuses a directory written in another encoding; marks a new one with this build's.
fn check_format(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FORMAT_FILE);
    let expected = codec::FORMAT_VERSION;
    match fs::read_to_string(&path) {
        Ok(text) => {
            let found = text
                .trim()
                .strip_prefix("consensus-lab format ")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| StorageError::Corrupt {
                    file: path.clone(),
                    offset: 0,
                    reason: format!("not a format marker: {:?}", text.trim()),
                })?;
            if found != expected {
                return Err(StorageError::Format {
                    dir: dir.to_path_buf(),
                    found,
                    expected,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Data without a marker predates it: format 1 (bincode 2).
            let has_data = fs::read_dir(dir)?.filter_map(|e| e.ok()).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(SEGMENT_SUFFIX) || name == HARD_STATE_FILE || name == SNAPSHOT_FILE
            });
            if has_data {
                return Err(StorageError::Format {
                    dir: dir.to_path_buf(),
                    found: 1,
                    expected,
                });
            }
            let tmp = dir.join(format!("{FORMAT_FILE}.tmp"));
            {
                let mut f = File::create(&tmp)?;
                io::Write::write_all(
                    &mut f,
                    format!("consensus-lab format {expected}\n").as_bytes(),
                )?;
                f.sync_all()?;
            }
            fs::rename(&tmp, &path)?;
            fsync_dir(dir)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Where one entry lives on disk.
#[derive(Clone, Copy, Debug)]
struct Loc {
    pos: Position,
    seg: u64,
    off: u64,
}

/// One planned change, performed by `sync` in order.
enum Step<H> {
    Create(u64),
    Write {
        seg: u64,
        off: u64,
        bytes: Vec<u8>,
    },
    SetLen {
        seg: u64,
        len: u64,
    },
    Remove(u64),
    /// The zeros written ahead of a segment's records cut off, durably, before the next
    /// segment starts: only the last segment may end in zeros.
    Trim {
        seg: u64,
        len: u64,
    },
    /// A segment the snapshot before it covers: deleted once that snapshot is durable.
    Covered(u64),
    HardState(H),
    /// A snapshot; `compacts`: the log holds its last entry (see the module documentation).
    Snapshot {
        snap: Snapshot,
        compacts: bool,
    },
}

/// A compacting snapshot being written by a thread of its own, and the segments it covers.
struct Writing {
    writer: Writer,
    covered: Vec<u64>,
}

/// Who writes a compacting snapshot.
enum Writer {
    Thread(std::thread::JoinHandle<Result<(), StorageError>>),
    /// Not written until the log waits for it (tests: a crash before the writer finishes).
    #[cfg(test)]
    Held(Snapshot),
}

impl Writer {
    fn is_finished(&self) -> bool {
        match self {
            Writer::Thread(t) => t.is_finished(),
            #[cfg(test)]
            Writer::Held(_) => false,
        }
    }
}

/// A durable log in a directory; see the module documentation for the format.
pub struct FileLog<H> {
    dir: PathBuf,
    segment_bytes: u64,
    /// Open segment files by number, with each one's length on disk (zeros ahead included).
    files: BTreeMap<u64, (File, u64)>,
    /// Last position stored in each segment (or the snapshot's, if it holds none after it).
    seg_last: BTreeMap<u64, Position>,
    /// The segment appends go to, and its length once the planned steps are done.
    active: Option<(u64, u64)>,
    /// Every entry after the snapshot, planned ones included.
    index: VecDeque<Loc>,
    snapshot_last: Position,
    steps: Vec<Step<H>>,
    /// A compacting snapshot not yet known to be durable.
    writing: Option<Writing>,
    /// Tests: compacting snapshots wait in [`Writer::Held`].
    #[cfg(test)]
    hold_snapshots: bool,
    recovered: bool,
    _h: PhantomData<H>,
}

/// Runs blocking file work without stalling a multi-threaded tokio runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl<H> FileLog<H>
where
    H: Clone + Default + Serialize + DeserializeOwned + Send + Sync,
{
    /// A log in `dir` (created if missing) with the default segment size. Call
    /// [`LogStore::recover`] before writing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        Self::with_segment_bytes(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// A log whose segments are closed once they pass `segment_bytes`.
    pub fn with_segment_bytes(
        dir: impl Into<PathBuf>,
        segment_bytes: u64,
    ) -> Result<Self, StorageError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        check_format(&dir)?;
        Ok(FileLog {
            dir,
            segment_bytes: segment_bytes.max(1),
            files: BTreeMap::new(),
            seg_last: BTreeMap::new(),
            active: None,
            index: VecDeque::new(),
            snapshot_last: Position::ZERO,
            steps: Vec::new(),
            writing: None,
            #[cfg(test)]
            hold_snapshots: false,
            recovered: false,
            _h: PhantomData,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Paths of the segment files, oldest first, as of the last sync.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.files
            .keys()
            .map(|&s| self.dir.join(segment_name(s)))
            .collect()
    }

    fn last_pos(&self) -> Position {
        self.index.back().map_or(self.snapshot_last, |l| l.pos)
    }

    fn push_write(&mut self, seg: u64, off: u64, record: &[u8]) {
        if let Some(Step::Write {
            seg: s,
            off: o,
            bytes,
        }) = self.steps.last_mut()
        {
            if *s == seg && *o + bytes.len() as u64 == off {
                bytes.extend_from_slice(record);
                return;
            }
        }
        self.steps.push(Step::Write {
            seg,
            off,
            bytes: record.to_vec(),
        });
    }

    fn start_segment(&mut self) -> u64 {
        if let Some((seg, len)) = self.active {
            if len < self.segment_bytes {
                // Left before it was full (a snapshot covered it): zeros may follow its records.
                self.steps.push(Step::Trim { seg, len });
            }
        }
        let next = self.seg_last.keys().next_back().map_or(1, |s| s + 1);
        self.steps.push(Step::Create(next));
        self.seg_last.insert(next, self.snapshot_last);
        self.active = Some((next, 0));
        next
    }

    fn plan_append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut record = Vec::new();
        let mut payload = Vec::new();
        for e in entries {
            let last = self.last_pos();
            if e.pos <= last {
                return Err(StorageError::Order(format!(
                    "append of {} after {}",
                    e.pos, last
                )));
            }
            payload.clear();
            codec::encode_into(e, &mut payload).map_err(|err| {
                StorageError::Order(format!("entry {} does not encode: {err}", e.pos))
            })?;
            record.clear();
            frame_into(&payload, &mut record);
            let (seg, off) = match self.active {
                Some((seg, len)) if len < self.segment_bytes => (seg, len),
                _ => (self.start_segment(), 0),
            };
            self.push_write(seg, off, &record);
            self.active = Some((seg, off + record.len() as u64));
            self.seg_last.insert(seg, e.pos);
            self.index.push_back(Loc {
                pos: e.pos,
                seg,
                off,
            });
        }
        Ok(())
    }

    fn plan_truncate(&mut self, after: Position) {
        let keep = self.index.partition_point(|l| l.pos <= after);
        let Some(&cut) = self.index.get(keep) else {
            return;
        };
        // From the end backwards: later segments first, newest first, then the cut. A crash
        // in between leaves the log shortened from its tail, never with a hole in it.
        let later: Vec<u64> = self
            .seg_last
            .range(cut.seg + 1..)
            .map(|(&s, _)| s)
            .rev()
            .collect();
        for s in later {
            self.seg_last.remove(&s);
            self.steps.push(Step::Remove(s));
        }
        self.steps.push(Step::SetLen {
            seg: cut.seg,
            len: cut.off,
        });
        let last_in_seg = match keep.checked_sub(1).map(|i| self.index[i]) {
            Some(l) if l.seg == cut.seg => l.pos,
            _ => self.snapshot_last,
        };
        self.seg_last.insert(cut.seg, last_in_seg);
        self.active = Some((cut.seg, cut.off));
        self.index.truncate(keep);
    }

    fn plan_snapshot(&mut self, snap: &Snapshot) {
        if snap.last < self.snapshot_last {
            return; // older than the stored one: ignored, as the contract says
        }
        let drop = self.index.partition_point(|l| l.pos <= snap.last);
        let compacts = drop > 0 && self.index[drop - 1].pos == snap.last;
        self.steps.push(Step::Snapshot {
            snap: snap.clone(),
            compacts,
        });
        if snap.last == self.snapshot_last {
            return;
        }
        self.snapshot_last = snap.last;
        self.index.drain(..drop);
        if let Some((active, len)) = self.active {
            if len > 0 && self.seg_last.get(&active).is_some_and(|&p| p <= snap.last) {
                // Everything in the active segment is covered: start afresh so it can go.
                self.start_segment();
            }
        }
        let active = self.active.map(|(s, _)| s);
        let covered: Vec<u64> = self
            .seg_last
            .iter()
            .filter(|&(&s, &p)| Some(s) != active && p <= snap.last)
            .map(|(&s, _)| s)
            .collect();
        for s in covered {
            self.seg_last.remove(&s);
            self.steps.push(Step::Covered(s));
        }
    }

    fn file(&mut self, seg: u64) -> io::Result<&mut (File, u64)> {
        if !self.files.contains_key(&seg) {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(self.dir.join(segment_name(seg)))?;
            let len = f.metadata()?.len();
            self.files.insert(seg, (f, len));
        }
        Ok(self.files.get_mut(&seg).expect("just opened"))
    }

    /// Writes `bytes` at `off` of segment `seg`, first filling the file with zeros ahead of
    /// them up to the next multiple of [`PREALLOC_BYTES`] (at most to the segment size) when
    /// they reach past its end.
    fn write_at(&mut self, seg: u64, off: u64, bytes: &[u8]) -> io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let limit = self.segment_bytes;
        let (f, len) = self.file(seg)?;
        let end = off + bytes.len() as u64;
        if end > *len && end < limit {
            let ahead = end.next_multiple_of(PREALLOC_BYTES).min(limit);
            let mut at = (*len).max(end);
            while at < ahead {
                let n = (ahead - at).min(ZEROS.len() as u64);
                f.write_all_at(&ZEROS[..n as usize], at)?;
                at += n;
            }
            *len = ahead;
        }
        f.write_all_at(bytes, off)?;
        *len = (*len).max(end);
        Ok(())
    }

    fn flush(&mut self, dirty: &mut BTreeSet<u64>, dir_dirty: &mut bool) -> io::Result<()> {
        for seg in std::mem::take(dirty) {
            if let Some((f, _)) = self.files.get(&seg) {
                f.sync_data()?;
            }
        }
        if std::mem::take(dir_dirty) {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Performs only the first `n` planned steps, fsyncs them and forgets the rest, as if the
    /// machine had crashed partway through [`LogStore::sync`]; for crash-order tests. Returns
    /// how many steps were planned. Reopen the directory to see what a restart would find.
    pub fn sync_prefix(&mut self, n: usize) -> Result<usize, StorageError> {
        let planned = self.steps.len();
        self.steps.truncate(n);
        self.sync_blocking()?;
        self.finish_writing()?;
        self.recovered = false;
        Ok(planned)
    }

    /// Steps planned by [`LogStore::write`] and not yet performed.
    pub fn planned_steps(&self) -> usize {
        self.steps.len()
    }

    /// Waits for the snapshot being written, if any, then deletes the segments it covers.
    fn finish_writing(&mut self) -> Result<(), StorageError> {
        let Some(w) = self.writing.take() else {
            return Ok(());
        };
        match w.writer {
            Writer::Thread(t) => t
                .join()
                .map_err(|_| StorageError::Order("the snapshot writer panicked".into()))??,
            #[cfg(test)]
            Writer::Held(snap) => write_snapshot(&self.dir, &snap)?,
        }
        self.remove_segments(&w.covered)
    }

    /// Starts writing a compacting snapshot on a thread of its own.
    fn writer(&self, snap: Snapshot) -> Result<Writer, StorageError> {
        #[cfg(test)]
        if self.hold_snapshots {
            return Ok(Writer::Held(snap));
        }
        let dir = self.dir.clone();
        let thread = std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || write_snapshot(&dir, &snap))?;
        Ok(Writer::Thread(thread))
    }

    /// Deletes whole segments (closing them first), then makes the deletions durable.
    fn remove_segments(&mut self, segs: &[u64]) -> Result<(), StorageError> {
        for &seg in segs {
            self.files.remove(&seg);
            match fs::remove_file(self.dir.join(segment_name(seg))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !segs.is_empty() {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn sync_blocking(&mut self) -> Result<(), StorageError> {
        if self
            .writing
            .as_ref()
            .is_some_and(|w| w.writer.is_finished())
        {
            self.finish_writing()?;
        }
        let mut dirty = BTreeSet::new();
        let mut dir_dirty = false;
        for step in std::mem::take(&mut self.steps) {
            match step {
                Step::Create(seg) => {
                    self.file(seg)?;
                    dir_dirty = true;
                }
                Step::Write { seg, off, bytes } => {
                    self.write_at(seg, off, &bytes)?;
                    dirty.insert(seg);
                }
                // A truncation or removal is durable before anything written after it, so
                // that a crash leaves a prefix of the planned changes (the `LogStore`
                // contract): never new records beside old ones that should be gone.
                Step::SetLen { seg, len } => {
                    self.finish_writing()?;
                    let (f, file_len) = self.file(seg)?;
                    f.set_len(len)?;
                    *file_len = len;
                    dirty.insert(seg);
                    self.flush(&mut dirty, &mut dir_dirty)?;
                }
                // Not a change of the log's contents, so no wait for a snapshot being written;
                // durable at once, before a later segment can be.
                Step::Trim { seg, len } => {
                    let (f, file_len) = self.file(seg)?;
                    if *file_len > len {
                        f.set_len(len)?;
                        *file_len = len;
                        f.sync_data()?;
                        dirty.remove(&seg);
                    }
                }
                // A segment a snapshot still being written covers goes once it is durable.
                Step::Covered(seg) if self.writing.is_some() => {
                    self.files.remove(&seg);
                    dirty.remove(&seg);
                    if let Some(w) = &mut self.writing {
                        w.covered.push(seg);
                    }
                }
                Step::Remove(seg) | Step::Covered(seg) => {
                    self.finish_writing()?;
                    dirty.remove(&seg);
                    self.flush(&mut dirty, &mut dir_dirty)?;
                    self.remove_segments(&[seg])?;
                }
                Step::HardState(h) => {
                    // Everything planned before it is durable first.
                    self.flush(&mut dirty, &mut dir_dirty)?;
                    let payload = codec::encode(&h).map_err(|e| {
                        StorageError::Order(format!("hard state does not encode: {e}"))
                    })?;
                    write_atomic(&self.dir, HARD_STATE_FILE, &payload)?;
                }
                Step::Snapshot { snap, compacts } => {
                    self.finish_writing()?;
                    if compacts {
                        self.writing = Some(Writing {
                            writer: self.writer(snap)?,
                            covered: Vec::new(),
                        });
                    } else {
                        self.flush(&mut dirty, &mut dir_dirty)?;
                        write_snapshot(&self.dir, &snap)?;
                    }
                }
            }
        }
        self.flush(&mut dirty, &mut dir_dirty)?;
        Ok(())
    }

    fn recover_blocking(&mut self) -> Result<Recovered<H>, StorageError> {
        self.steps.clear();
        self.finish_writing()?;
        self.files.clear();
        self.seg_last.clear();
        self.index.clear();
        self.active = None;
        for name in [HARD_STATE_FILE, SNAPSHOT_FILE] {
            let _ = fs::remove_file(self.dir.join(format!("{name}.tmp")));
        }
        let hard_state: H = read_atomic(&self.dir, HARD_STATE_FILE)?.unwrap_or_default();
        let snapshot: Option<Snapshot> = read_atomic(&self.dir, SNAPSHOT_FILE)?;
        self.snapshot_last = snapshot.as_ref().map_or(Position::ZERO, |s| s.last);

        let mut segs = Vec::new();
        for dirent in fs::read_dir(&self.dir)? {
            let name = dirent?.file_name();
            let name = name.to_string_lossy();
            if let Some(num) = name.strip_suffix(SEGMENT_SUFFIX) {
                if let Ok(n) = num.parse::<u64>() {
                    segs.push(n);
                }
            }
        }
        segs.sort_unstable();
        let mut entries = Vec::new();
        let mut last = Position::ZERO;
        for (i, &seg) in segs.iter().enumerate() {
            let path = self.dir.join(segment_name(seg));
            let data = fs::read(&path)?;
            let is_last = i + 1 == segs.len();
            let mut off = 0usize;
            let mut seg_last = self.snapshot_last;
            while off < data.len() {
                let (bad, tearable) = match parse_at(&data, off) {
                    Parsed::Record(payload, used) => match codec::decode::<Entry>(payload) {
                        Ok(e) => {
                            if e.pos <= last {
                                return Err(StorageError::Corrupt {
                                    file: path,
                                    offset: off as u64,
                                    reason: format!("entry {} is not after {}", e.pos, last),
                                });
                            }
                            last = e.pos;
                            seg_last = seg_last.max(e.pos);
                            if e.pos > self.snapshot_last {
                                self.index.push_back(Loc {
                                    pos: e.pos,
                                    seg,
                                    off: off as u64,
                                });
                                entries.push(e);
                            }
                            off += used;
                            continue;
                        }
                        // A zero-filled tail (a file extended but not written) reads as an
                        // empty record; any other record whose checksum holds was written
                        // whole, and not as an entry.
                        Err(_) => ("record does not decode as an entry", payload.is_empty()),
                    },
                    Parsed::Bad(why) => (why, true),
                    Parsed::Impossible(why) => (why, false),
                };
                // Zeros to the end of the last segment: space written ahead, never used.
                if is_last && tearable && data[off..].iter().all(|&b| b == 0) {
                    break;
                }
                if !tearable {
                    return Err(StorageError::Corrupt {
                        file: path,
                        offset: off as u64,
                        reason: format!("{bad}: not what an interrupted write leaves"),
                    });
                }
                if !is_last || valid_record_after(&data, off) {
                    return Err(StorageError::Corrupt {
                        file: path,
                        offset: off as u64,
                        reason: format!("{bad}, with log records after it"),
                    });
                }
                tracing::warn!(
                    file = %path.display(),
                    offset = off,
                    dropped_bytes = data.len() - off,
                    "truncating a torn record at the tail of the log: {bad}"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(off as u64)?;
                f.sync_all()?;
                break;
            }
            self.seg_last.insert(seg, seg_last);
            self.active = Some((seg, off.min(data.len()) as u64));
            self.file(seg)?;
        }
        self.recovered = true;
        Ok(Recovered {
            hard_state,
            snapshot,
            entries,
        })
    }
}

/// Encodes a snapshot and replaces the snapshot file with it, durably.
fn write_snapshot(dir: &Path, snap: &Snapshot) -> Result<(), StorageError> {
    let (head, tail) = snapshot_parts(snap)?;
    write_atomic_parts(dir, SNAPSHOT_FILE, &[&head, &snap.data, &tail])?;
    Ok(())
}

/// A snapshot's encoding around its state, which is left where it is: the encoding of its
/// position and of the state's length, then (after the state's bytes) of its configuration.
/// Together the same bytes as `codec::encode_state(snap)`, without a copy of the state.
fn snapshot_parts(snap: &Snapshot) -> Result<(Vec<u8>, Vec<u8>), StorageError> {
    let fails =
        |e: codec::CodecError| StorageError::Order(format!("snapshot does not encode: {e}"));
    // A byte string is encoded as its length (a varint, as a `usize` is) and its bytes.
    let head = codec::encode_state(&(snap.last, snap.data.len())).map_err(fails)?;
    let tail = codec::encode_state(&snap.members).map_err(fails)?;
    let total = head.len() + snap.data.len() + tail.len();
    if total > codec::MAX_STATE_BYTES {
        return Err(fails(codec::CodecError::FrameTooLarge {
            len: total,
            max: codec::MAX_STATE_BYTES,
        }));
    }
    Ok((head, tail))
}

impl<H> Drop for FileLog<H> {
    /// Waits for a snapshot being written: a log opened on the same directory next must not
    /// see an older snapshot land after its own.
    fn drop(&mut self) {
        if let Some(Writing {
            writer: Writer::Thread(t),
            ..
        }) = self.writing.take()
        {
            let _ = t.join();
        }
    }
}

#[async_trait]
impl<H> LogStore<H> for FileLog<H>
where
    H: Clone + Default + Serialize + DeserializeOwned + Send + Sync,
{
    async fn write(&mut self, ops: &[PersistOp<H>]) -> Result<(), StorageError> {
        if !self.recovered {
            return Err(StorageError::Order(
                "recover the log before writing to it".into(),
            ));
        }
        for op in ops {
            match op {
                PersistOp::HardState(h) => self.steps.push(Step::HardState(h.clone())),
                PersistOp::Append(entries) => self.plan_append(entries)?,
                PersistOp::TruncateAfter(pos) => self.plan_truncate(*pos),
                PersistOp::Snapshot(s) => self.plan_snapshot(s),
            }
        }
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), StorageError> {
        if self.steps.is_empty() {
            return Ok(());
        }
        blocking(|| self.sync_blocking())
    }

    async fn recover(&mut self) -> Result<Recovered<H>, StorageError> {
        blocking(|| self.recover_blocking())
    }
}

#[cfg(test)]
mod tests;
