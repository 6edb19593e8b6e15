use super::*;
use bytes::Bytes;
use consensus_core::poll::now_or_never;
use std::io::Write;

fn entry(era: u64, seq: u64) -> Entry {
    Entry::command(
        Position::new(era, seq),
        Bytes::from(format!("cmd-{era}-{seq}")),
    )
}

fn entries(era: u64, seqs: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    seqs.map(|s| entry(era, s)).collect()
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    now_or_never(f).expect("FileLog never waits")
}

fn open(dir: &Path, seg: u64) -> (FileLog<u64>, Recovered<u64>) {
    let mut log = FileLog::with_segment_bytes(dir, seg).unwrap();
    let rec = run(log.recover()).unwrap();
    (log, rec)
}

/// Recovers the log in `dir`, which must refuse it as corrupt; the file and offset it names.
fn corruption(dir: &Path, seg: u64) -> (PathBuf, u64) {
    let mut log: FileLog<u64> = FileLog::with_segment_bytes(dir, seg).unwrap();
    match run(log.recover()) {
        Err(StorageError::Corrupt { file, offset, .. }) => (file, offset),
        other => panic!("expected corruption, got {other:?}"),
    }
}

fn persist(log: &mut FileLog<u64>, ops: Vec<PersistOp<u64>>) {
    run(log.write(&ops)).unwrap();
    run(log.sync()).unwrap();
}

fn positions(rec: &Recovered<u64>) -> Vec<(u64, u64)> {
    rec.entries.iter().map(|e| (e.pos.era, e.pos.seq)).collect()
}

#[test]
fn synced_entries_hard_state_and_snapshot_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec, Recovered::default());
    persist(
        &mut log,
        vec![
            PersistOp::HardState(7),
            PersistOp::Append(entries(1, 1..=5)),
        ],
    );
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.hard_state, 7);
    assert_eq!(rec.entries, entries(1, 1..=5));
    assert_eq!(rec.snapshot, None);
}

#[test]
fn writes_without_sync_are_not_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=2))]);
    run(log.write(&[
        PersistOp::Append(entries(1, 3..=4)),
        PersistOp::HardState(3),
    ]))
    .unwrap();
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=2));
    assert_eq!(rec.hard_state, 0);
}

#[test]
fn append_at_or_before_the_last_position_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=3))]);
    let err = run(log.write(&[PersistOp::Append(vec![entry(1, 3)])])).unwrap_err();
    assert!(matches!(err, StorageError::Order(_)), "{err}");
}

#[test]
fn writing_before_recover_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log: FileLog<u64> = FileLog::open(dir.path()).unwrap();
    let err = run(log.write(&[PersistOp::Append(entries(1, 1..=1))])).unwrap_err();
    assert!(matches!(err, StorageError::Order(_)), "{err}");
}

#[test]
fn truncate_after_cuts_across_segments_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    // Tiny segments: a few entries each.
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=20))]);
    assert!(log.segment_paths().len() > 3, "{:?}", log.segment_paths());
    persist(
        &mut log,
        vec![
            PersistOp::TruncateAfter(Position::new(1, 4)),
            PersistOp::Append(entries(2, 5..=6)),
        ],
    );
    drop(log);
    let (mut log, rec) = open(dir.path(), 64);
    let mut want: Vec<(u64, u64)> = (1..=4).map(|s| (1, s)).collect();
    want.extend([(2, 5), (2, 6)]);
    assert_eq!(positions(&rec), want);
    // Truncation within the pending batch works too.
    persist(
        &mut log,
        vec![
            PersistOp::Append(entries(2, 7..=9)),
            PersistOp::TruncateAfter(Position::new(2, 7)),
            PersistOp::Append(entries(3, 8..=8)),
        ],
    );
    drop(log);
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(&positions(&rec)[4..], &[(2, 5), (2, 6), (2, 7), (3, 8)]);
}

#[test]
fn snapshot_drops_covered_entries_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=30))]);
    let before = log.segment_paths().len();
    let snap = Snapshot {
        last: Position::new(1, 25),
        data: Bytes::from_static(b"state"),
        members: None,
    };
    persist(&mut log, vec![PersistOp::Snapshot(snap.clone())]);
    let after = log.segment_paths().len();
    assert!(after < before, "segments {before} -> {after}");
    persist(&mut log, vec![PersistOp::Append(entries(1, 31..=32))]);
    drop(log);
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.entries, entries(1, 26..=32));
}

#[test]
fn snapshot_past_the_whole_log_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=3))]);
    let snap = Snapshot {
        last: Position::new(2, 10),
        data: Bytes::new(),
        members: None,
    };
    persist(
        &mut log,
        vec![
            PersistOp::Snapshot(snap),
            PersistOp::Append(entries(2, 11..=11)),
        ],
    );
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(2, 11..=11));
}

fn snap_at(era: u64, seq: u64) -> Snapshot {
    Snapshot {
        last: Position::new(era, seq),
        data: Bytes::from(format!("state at {era}.{seq}")),
        members: None,
    }
}

fn segment_count(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(SEGMENT_SUFFIX)
        })
        .count()
}

#[test]
fn a_compacting_snapshot_is_written_apart_and_its_segments_go_once_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=30))]);
    let segments = segment_count(dir.path());
    log.hold_snapshots = true;
    persist(&mut log, vec![PersistOp::Snapshot(snap_at(1, 25))]);
    // sync returned; the snapshot is not on disk yet and every segment it covers still is.
    assert!(!dir.path().join(SNAPSHOT_FILE).exists());
    assert!(segment_count(dir.path()) >= segments);
    log.finish_writing().unwrap();
    assert!(dir.path().join(SNAPSHOT_FILE).exists());
    assert!(segment_count(dir.path()) < segments);
    drop(log);
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(rec.snapshot, Some(snap_at(1, 25)));
    assert_eq!(rec.entries, entries(1, 26..=30));
}

#[test]
fn a_crash_before_a_compacting_snapshot_is_durable_keeps_every_entry_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=30))]);
    log.hold_snapshots = true;
    persist(
        &mut log,
        vec![
            PersistOp::Snapshot(snap_at(1, 25)),
            PersistOp::Append(entries(1, 31..=32)),
            PersistOp::HardState(9),
        ],
    );
    drop(log); // the held snapshot is never written: a crash before its writer finished
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(rec.snapshot, None);
    assert_eq!(rec.entries, entries(1, 1..=32));
    assert_eq!(rec.hard_state, 9);
}

#[test]
fn a_snapshot_that_replaces_the_log_is_durable_when_sync_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    log.hold_snapshots = true;
    // Not an entry of this log (another era): a leader's snapshot, written in order.
    persist(&mut log, vec![PersistOp::Snapshot(snap_at(2, 4))]);
    drop(log);
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(rec.snapshot, Some(snap_at(2, 4)));
}

#[test]
fn a_truncation_waits_for_the_compacting_snapshot_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=30))]);
    log.hold_snapshots = true;
    persist(&mut log, vec![PersistOp::Snapshot(snap_at(1, 25))]);
    persist(
        &mut log,
        vec![PersistOp::TruncateAfter(Position::new(1, 28))],
    );
    drop(log);
    let (_, rec) = open(dir.path(), 64);
    assert_eq!(rec.snapshot, Some(snap_at(1, 25)));
    assert_eq!(rec.entries, entries(1, 26..=28));
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

/// Where the records of segment `path` end (the zeros written ahead of them start).
fn records_end(path: &Path) -> usize {
    let data = fs::read(path).unwrap();
    let mut off = 0;
    while let Parsed::Record(p, used) = parse_at(&data, off) {
        if p.is_empty() {
            break;
        }
        off += used;
    }
    off
}

/// Flips the bits of the byte at `at` (negative: back from the end of the records) of `path`;
/// returns the new bytes.
fn flip(path: &Path, at: isize) -> Vec<u8> {
    let end = records_end(path);
    let mut data = fs::read(path).unwrap();
    let i = if at < 0 {
        end - at.unsigned_abs()
    } else {
        at as usize
    };
    data[i] ^= 0xff;
    fs::write(path, &data).unwrap();
    data
}

#[test]
fn torn_tail_is_truncated_and_the_log_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    drop(log);
    // A writer died halfway through a record: a header promising more than is there, in the
    // zeros written ahead.
    let seg = last_segment(dir.path());
    let good_len = records_end(&seg) as u64;
    let mut torn = Vec::new();
    frame_into(&codec::encode(&entry(1, 6)).unwrap(), &mut torn);
    torn.truncate(torn.len() / 2);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .write_all_at(&torn, good_len)
        .unwrap();

    let (mut log, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=5));
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
    persist(&mut log, vec![PersistOp::Append(entries(1, 6..=7))]);
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=7));
}

#[test]
fn flipped_byte_in_the_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    drop(log);
    flip(&last_segment(dir.path()), -2);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=4));
}

#[test]
fn flipped_byte_before_the_tail_stops_recovery_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    drop(log);
    let seg = last_segment(dir.path());
    let first_len = RECORD_HEADER_BYTES + codec::encode(&entry(1, 1)).unwrap().len();
    // Damage the second record's payload.
    let data = flip(&seg, (first_len + RECORD_HEADER_BYTES + 1) as isize);
    let (file, offset) = corruption(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(file, seg);
    assert_eq!(offset, first_len as u64);
    // Nothing was cut: the damaged file is left for a person to inspect.
    assert_eq!(fs::read(&seg).unwrap(), data);
}

#[test]
fn a_segment_replaced_by_garbage_stops_recovery_instead_of_dropping_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 256);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=40))]);
    drop(log);
    let seg = last_segment(dir.path());
    let len = fs::metadata(&seg).unwrap().len() as usize;
    // Deterministic noise the size of the segment (a linear congruential generator).
    let mut x: u32 = 0x2545_f491;
    let garbage: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    fs::write(&seg, &garbage).unwrap();
    let (file, offset) = corruption(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(file, seg);
    assert_eq!(offset, 0);
    assert_eq!(fs::read(&seg).unwrap(), garbage, "nothing was cut");
}

/// A file grown without its data reaching it (or zeros written ahead) ends the log where the
/// zeros start; they are left in place, not cut as a torn record.
#[test]
fn a_zero_filled_tail_ends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    drop(log);
    let seg = last_segment(dir.path());
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    let (mut log, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=5));
    assert_eq!(fs::metadata(&seg).unwrap().len(), len);
    persist(&mut log, vec![PersistOp::Append(entries(1, 6..=6))]);
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=6));
}

/// Appends write zeros ahead of their records, so a batch's fdatasync seldom grows the file;
/// recovery ends the log where the zeros start and keeps them for the appends to come.
#[test]
fn appends_write_zeros_ahead_and_recovery_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=5))]);
    let seg = last_segment(dir.path());
    assert_eq!(fs::metadata(&seg).unwrap().len(), PREALLOC_BYTES);
    for s in 6..=100 {
        persist(&mut log, vec![PersistOp::Append(entries(1, s..=s))]);
    }
    assert_eq!(fs::metadata(&seg).unwrap().len(), PREALLOC_BYTES);
    let end = records_end(&seg);
    drop(log);
    let (mut log, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries, entries(1, 1..=100));
    assert_eq!(fs::metadata(&seg).unwrap().len(), PREALLOC_BYTES);
    // The next append goes where the records ended, over the zeros.
    persist(&mut log, vec![PersistOp::Append(entries(1, 101..=101))]);
    assert!(records_end(&seg) > end);
    // Past the space ahead, the file grows by another step.
    let big = Entry::command(Position::new(1, 102), Bytes::from(vec![7u8; 1 << 20]));
    persist(&mut log, vec![PersistOp::Append(vec![big.clone()])]);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 2 * PREALLOC_BYTES);
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.entries.len(), 102);
    assert_eq!(rec.entries.last(), Some(&big));
}

/// Zeros ahead never reach past the segment size, and a segment left before it is full (a
/// snapshot covered it) loses them before the next segment starts: only the last segment
/// may end in zeros, so zeros in an earlier one are still damage.
#[test]
fn only_the_last_segment_ends_in_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 4096);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=10))]);
    let first = last_segment(dir.path());
    assert_eq!(fs::metadata(&first).unwrap().len(), 4096);
    // The snapshot covers the whole active segment: a new one starts, and the covered one
    // stays until the snapshot is durable.
    log.hold_snapshots = true;
    persist(
        &mut log,
        vec![
            PersistOp::Snapshot(snap_at(1, 10)),
            PersistOp::Append(entries(1, 11..=12)),
        ],
    );
    assert_ne!(last_segment(dir.path()), first);
    assert_eq!(
        fs::metadata(&first).unwrap().len(),
        records_end(&first) as u64
    );
    drop(log); // a crash before the snapshot is written: the covered segment is still there
    let (_, rec) = open(dir.path(), 4096);
    assert_eq!(rec.entries, entries(1, 1..=12));
    // Zeros over the last records of an earlier segment are damage, not a torn tail.
    let end = records_end(&first);
    let data = fs::read(&first).unwrap();
    let mut damaged = data[..end].to_vec();
    let last_record = RECORD_HEADER_BYTES + codec::encode(&entry(1, 10)).unwrap().len();
    damaged[end - last_record..].fill(0);
    fs::write(&first, &damaged).unwrap();
    let (file, offset) = corruption(dir.path(), 4096);
    assert_eq!(file, first);
    assert_eq!(offset as usize, end - last_record);
}

#[test]
fn damage_in_an_earlier_segment_stops_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 64);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=20))]);
    let first = log.segment_paths()[0].clone();
    drop(log);
    flip(&first, -1);
    let mut log: FileLog<u64> = FileLog::with_segment_bytes(dir.path(), 64).unwrap();
    let err = run(log.recover()).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { file, .. } if *file == first),
        "{err}"
    );
    assert!(
        err.to_string().contains(&first.display().to_string()),
        "{err}"
    );
}

#[test]
fn damaged_hard_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::HardState(9)]);
    drop(log);
    flip(
        &dir.path().join(HARD_STATE_FILE),
        RECORD_HEADER_BYTES as isize,
    );
    let mut log: FileLog<u64> = FileLog::open(dir.path()).unwrap();
    assert!(matches!(
        run(log.recover()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn hard_state_is_replaced_atomically_and_leftover_temp_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::HardState(1)]);
    persist(&mut log, vec![PersistOp::HardState(2)]);
    drop(log);
    // A crash while writing the next one leaves only a temp file behind.
    fs::write(dir.path().join("hardstate.tmp"), b"half").unwrap();
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(rec.hard_state, 2);
    assert!(!dir.path().join("hardstate.tmp").exists());
}

/// ZOOKEEPER-1156 (log truncation truncating too much): for every target, in the middle of a
/// segment, at a segment's edge, between epochs or before the first entry, TruncateAfter keeps
/// exactly the entries at or before the target, and they survive a restart.
#[test]
fn zookeeper_1156_truncation_keeps_exactly_the_entries_up_to_the_target() {
    let mut all = entries(1, 1..=7);
    all.extend(entries(2, 1..=6));
    all.extend(entries(4, 1..=5));
    let mut targets: Vec<Position> = all.iter().map(|e| e.pos).collect();
    targets.extend([
        Position::ZERO,
        Position::new(1, 100),
        Position::new(3, 0),
        Position::new(9, 9),
    ]);
    for seg_bytes in [48, 100, DEFAULT_SEGMENT_BYTES] {
        for &target in &targets {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path(), seg_bytes);
            persist(&mut log, vec![PersistOp::Append(all.clone())]);
            persist(&mut log, vec![PersistOp::TruncateAfter(target)]);
            drop(log);
            let (mut log, rec) = open(dir.path(), seg_bytes);
            let want: Vec<Entry> = all.iter().filter(|e| e.pos <= target).cloned().collect();
            assert_eq!(
                rec.entries, want,
                "segments of {seg_bytes} B, target {target}"
            );
            // The log goes on from the target.
            let next = Entry::command(Position::new(9, 10), Bytes::from_static(b"next"));
            persist(&mut log, vec![PersistOp::Append(vec![next.clone()])]);
            drop(log);
            let (_, rec) = open(dir.path(), seg_bytes);
            assert_eq!(rec.entries.last(), Some(&next));
            assert_eq!(rec.entries.len(), want.len() + 1);
        }
    }
}

/// A small deterministic generator for the crash-equivalence test (no dependency needed).
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Valid persist operations on top of a log whose entries are `log` and whose snapshot ends at
/// `snap`: appends (sometimes in a new era), truncations, snapshots, hard states.
fn random_ops(
    rng: &mut Xorshift,
    log: &mut Vec<Position>,
    snap: &mut Position,
) -> Vec<PersistOp<u64>> {
    let mut ops = Vec::new();
    for _ in 0..1 + rng.below(5) {
        let last = log.last().copied().unwrap_or(*snap);
        match rng.below(5) {
            0 | 1 => {
                let era = last.era.max(1) + rng.below(2);
                let n = 1 + rng.below(3);
                let es: Vec<Entry> = (1..=n).map(|i| entry(era, last.seq + i)).collect();
                log.extend(es.iter().map(|e| e.pos));
                ops.push(PersistOp::Append(es));
            }
            2 if !log.is_empty() => {
                let keep = rng.below(log.len() as u64 + 1) as usize;
                let at = if keep == 0 { *snap } else { log[keep - 1] };
                log.truncate(keep);
                ops.push(PersistOp::TruncateAfter(at));
            }
            3 if !log.is_empty() => {
                let upto = rng.below(log.len() as u64) as usize;
                let at = log[upto];
                log.drain(..=upto);
                *snap = at;
                ops.push(PersistOp::Snapshot(Snapshot {
                    last: at,
                    data: Bytes::from(format!("state at {at}")),
                    members: None,
                }));
            }
            _ => ops.push(PersistOp::HardState(rng.below(1000))),
        }
    }
    ops
}

/// Every state the in-memory model allows after a crash while syncing `batch` on top of the
/// synced `base`, with its first `k` operations done and the next one possibly cut.
fn model_crashes(
    base: &[PersistOp<u64>],
    batch: &[PersistOp<u64>],
    k: usize,
) -> Vec<Recovered<u64>> {
    use consensus_core::MemLogStore;
    let mut mem: MemLogStore<u64> = MemLogStore::new();
    run(mem.write(base)).unwrap();
    run(mem.sync()).unwrap();
    run(mem.write(batch)).unwrap();
    (0..=mem.pending_entries(k))
        .map(|j| {
            let mut mem = mem.clone();
            mem.crash_keeping(k, j);
            run(mem.recover()).unwrap()
        })
        .collect()
}

/// The position of the last snapshot among `ops` if nothing after it reaches below it (only
/// appends, hard states and truncations above it follow): a crash may leave it unwritten.
fn last_snapshot_that_may_be_missing(ops: &[PersistOp<u64>]) -> Option<usize> {
    let i = ops
        .iter()
        .rposition(|op| matches!(op, PersistOp::Snapshot(_)))?;
    let PersistOp::Snapshot(s) = &ops[i] else {
        unreachable!()
    };
    ops[i + 1..]
        .iter()
        .all(|op| match op {
            PersistOp::Append(_) | PersistOp::HardState(_) => true,
            PersistOp::TruncateAfter(at) => *at >= s.last,
            PersistOp::Snapshot(_) => false,
        })
        .then_some(i)
}

/// Crashes the real file log after every step of syncing a random batch on top of a random
/// base, 200 times, and checks each reopened state against the model. `held`: compacting
/// snapshots of the batch are held back and never written (their writer had not finished), and
/// the model may also leave out the last one. Returns the crashes checked and how many of them
/// had a snapshot unwritten.
fn crash_after_every_step(held: bool) -> (usize, usize) {
    let (mut checked, mut unwritten) = (0, 0);
    for seed in 1..=200u64 {
        let mut rng = Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut log_pos = Vec::new();
        let mut snap = Position::ZERO;
        let base = random_ops(&mut rng, &mut log_pos, &mut snap);
        let batch = random_ops(&mut rng, &mut log_pos, &mut snap);
        let mut allowed = Vec::new();
        for k in 0..=batch.len() {
            allowed.extend(model_crashes(&base, &batch, k));
            if let Some(i) = last_snapshot_that_may_be_missing(&batch[..k]).filter(|_| held) {
                let mut rest = batch.clone();
                rest.remove(i);
                allowed.extend(model_crashes(&base, &rest, k - 1));
            }
        }
        let mut planned = usize::MAX;
        let mut n = 0;
        while n <= planned {
            let dir = tempfile::tempdir().unwrap();
            // Small segments: appends open new ones, truncations and snapshots remove them.
            let (mut log, _) = open(dir.path(), 64);
            persist(&mut log, base.clone());
            log.finish_writing().unwrap();
            log.hold_snapshots = held;
            run(log.write(&batch)).unwrap();
            planned = log.planned_steps();
            log.steps.truncate(n);
            log.sync_blocking().unwrap();
            if held {
                unwritten += usize::from(log.writing.is_some());
            } else {
                log.finish_writing().unwrap();
            }
            drop(log); // a held snapshot is never written
            let (_, rec) = open(dir.path(), 64);
            assert!(
                allowed.contains(&rec),
                "seed {seed}: a crash after {n} of {planned} steps (held: {held}) left {rec:?}\nbase {base:?}\nbatch {batch:?}"
            );
            checked += 1;
            n += 1;
        }
    }
    (checked, unwritten)
}

/// The `LogStore` crash contract, checked on the real file log against the in-memory model: a
/// crash after any step of a sync leaves exactly what `MemLogStore::crash_keeping` allows (the
/// synced state plus a prefix of the unsynced operations, the last possibly a cut append).
#[test]
fn a_crash_after_any_step_leaves_what_the_in_memory_model_allows() {
    let (checked, _) = crash_after_every_step(false);
    assert!(checked > 100, "only {checked} crash points checked");
}

/// The same crashes with the last compacting snapshot's writer not finished: a crash may also
/// leave the prefix without that snapshot (the entries it covers then stay), when what follows
/// it there does not reach below it (appends, hard states, truncations above it).
#[test]
fn a_crash_while_a_compacting_snapshot_is_being_written_leaves_a_state_the_model_allows() {
    let (checked, unwritten) = crash_after_every_step(true);
    assert!(checked > 100, "only {checked} crash points checked");
    assert!(
        unwritten > 20,
        "only {unwritten} crashes with a snapshot unwritten"
    );
}

#[test]
fn a_new_directory_is_marked_with_the_codec_format_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    persist(&mut log, vec![PersistOp::Append(entries(1, 1..=3))]);
    let marker = std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap();
    assert_eq!(
        marker.trim(),
        format!("consensus-lab format {}", codec::FORMAT_VERSION)
    );
    drop(log);
    let (_, rec) = open(dir.path(), DEFAULT_SEGMENT_BYTES);
    assert_eq!(positions(&rec), vec![(1, 1), (1, 2), (1, 3)]);
}

#[test]
fn data_of_another_format_is_refused_with_the_directory_and_both_versions() {
    // Written before the marker existed: format 1.
    let old = tempfile::tempdir().unwrap();
    std::fs::write(old.path().join(segment_name(0)), b"\x05\x00\x00\x00garbage").unwrap();
    let err = FileLog::<u64>::open(old.path()).err().expect("refused");
    assert!(
        matches!(err, StorageError::Format { found: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&old.path().display().to_string()));
    // Marked with a later format.
    let later = tempfile::tempdir().unwrap();
    std::fs::write(
        later.path().join(FORMAT_FILE),
        format!("consensus-lab format {}\n", codec::FORMAT_VERSION + 1),
    )
    .unwrap();
    let err = FileLog::<u64>::open(later.path()).err().expect("refused");
    assert!(
        err.to_string()
            .contains(&format!("format {}", codec::FORMAT_VERSION + 1)),
        "{err}"
    );
    // A damaged marker is corruption, named by file.
    std::fs::write(later.path().join(FORMAT_FILE), "zzz").unwrap();
    let err = FileLog::<u64>::open(later.path()).err().expect("refused");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

#[test]
fn a_snapshot_file_is_the_snapshot_encoded_whole_though_written_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = consensus_core::Membership::of_voters(&[1, 2, 3]);
    members.addrs.insert(2, "127.0.0.1:7002".into());
    // A state long enough that its length takes a multi-byte varint.
    let data = Bytes::from((0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    for snap in [
        Snapshot {
            last: Position::new(3, 300),
            data: data.clone(),
            members: Some(Box::new(members)),
        },
        Snapshot {
            last: Position::new(1, 1),
            data: Bytes::new(),
            members: None,
        },
    ] {
        write_snapshot(dir.path(), &snap).unwrap();
        let file = fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap();
        let whole = codec::encode_state(&snap).unwrap();
        assert_eq!(&file[RECORD_HEADER_BYTES..], &whole[..]);
        assert_eq!(
            read_atomic::<Snapshot>(dir.path(), SNAPSHOT_FILE).unwrap(),
            Some(snap)
        );
    }
}
