//! The on-disk framing: checksummed records in segments, and files replaced atomically.

use super::{RECORD_HEADER_BYTES, SEGMENT_SUFFIX};
use consensus_core::{codec, Entry, StorageError};
use serde::de::DeserializeOwned;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub(super) fn segment_name(seg: u64) -> String {
    format!("{seg:020}{SEGMENT_SUFFIX}")
}

/// A record's header: the payload's length, then its CRC32, little-endian.
fn header(len: u32, crc: u32) -> [u8; RECORD_HEADER_BYTES] {
    let mut h = [0u8; RECORD_HEADER_BYTES];
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[4..8].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends `payload` to `out` as one framed record.
pub(super) fn frame_into(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(payload.len() as u32, crc32fast::hash(payload)));
    out.extend_from_slice(payload);
}

/// What sits at one offset of a segment.
pub(super) enum Parsed<'a> {
    /// A record whose checksum holds: its payload and total length.
    Record(&'a [u8], usize),
    /// Not a valid record, and why; what an interrupted write can leave at the tail.
    Bad(&'static str),
    /// Not a record, and nothing an interrupted write could leave: the writer never wrote
    /// it (a length over the limit), so it is damage wherever it sits.
    Impossible(&'static str),
}

pub(super) fn parse_at(data: &[u8], off: usize) -> Parsed<'_> {
    parse_within(data, off, codec::MAX_FRAME_BYTES)
}

/// [`parse_at`] with a limit on the record's length other than a frame's.
fn parse_within(data: &[u8], off: usize, max: usize) -> Parsed<'_> {
    let rest = &data[off..];
    if rest.len() < RECORD_HEADER_BYTES {
        return Parsed::Bad("partial record header");
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len > max {
        return Parsed::Impossible("record length over the limit");
    }
    if rest.len() < RECORD_HEADER_BYTES + len {
        return Parsed::Bad("record runs past the end of the file");
    }
    let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
    if crc32fast::hash(payload) != crc {
        return Parsed::Bad("checksum mismatch");
    }
    Parsed::Record(payload, RECORD_HEADER_BYTES + len)
}

/// True if a valid entry record starts anywhere after `off`: then the bad record at `off` is
/// not a torn tail but damage in the middle of the log.
pub(super) fn valid_record_after(data: &[u8], off: usize) -> bool {
    (off + 1..data.len().saturating_sub(RECORD_HEADER_BYTES - 1)).any(|o| {
        matches!(parse_at(data, o), Parsed::Record(p, _) if !p.is_empty() && codec::decode::<Entry>(p).is_ok())
    })
}

pub(super) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `payload` as one framed record to `dir/name` atomically: temp file, fsync, rename,
/// fsync of the directory.
pub(super) fn write_atomic(dir: &Path, name: &str, payload: &[u8]) -> io::Result<()> {
    write_atomic_parts(dir, name, &[payload])
}

/// [`write_atomic`] of a payload given in parts, written one after the other without first
/// copying them into one buffer (a snapshot's state is megabytes).
pub(super) fn write_atomic_parts(dir: &Path, name: &str, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))?;
    let mut crc = crc32fast::Hasher::new();
    for p in parts {
        crc.update(p);
    }
    let header = header(len, crc.finalize());
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = io::BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
        f.write_all(&header)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    fsync_dir(dir)
}

/// Reads a file written by [`write_atomic`]; `None` when it does not exist.
pub(super) fn read_atomic<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>, StorageError> {
    let path = dir.join(name);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason: String| StorageError::Corrupt {
        file: path.clone(),
        offset: 0,
        reason,
    };
    // The hard state and the snapshot: whole states, not frames.
    match parse_within(&data, 0, codec::MAX_STATE_BYTES) {
        Parsed::Record(payload, used) if used == data.len() => codec::decode_state(payload)
            .map(Some)
            .map_err(|e| corrupt(e.to_string())),
        Parsed::Record(..) => Err(corrupt("trailing bytes after the record".into())),
        Parsed::Bad(why) | Parsed::Impossible(why) => Err(corrupt(why.into())),
    }
}
