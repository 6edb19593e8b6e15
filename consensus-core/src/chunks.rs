//! Snapshots in chunks: what a sender cuts from a snapshot, and how a receiver puts the chunks
//! back together, so that a state larger than one frame reaches a lagging node (Raft's
//! InstallSnapshot with offset and done, Figure 13; ZAB's SNAP, streamed as ZooKeeper streams
//! it over its socket).

use crate::types::{Payload, Position, Snapshot};
use bytes::Bytes;

/// The default size of one chunk, and of the payload one message carries: 1 MiB, well under
/// the 16 MiB frame limit.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// The chunk of `data` that starts at `offset`, at most `max` bytes (at least one), and
/// whether it is the last one. An offset past the end gives an empty last chunk.
pub fn chunk(data: &Bytes, offset: u64, max: usize) -> (Bytes, bool) {
    let start = (offset as usize).min(data.len());
    let end = start.saturating_add(max.max(1)).min(data.len());
    (data.slice(start..end), end == data.len())
}

/// How many of `payloads` (taken in order) fit one message of at most `max_bytes` of payload:
/// at least one, so that a payload larger than the budget still goes, alone.
pub fn fitting<'a>(payloads: impl IntoIterator<Item = &'a Payload>, max_bytes: usize) -> usize {
    let mut n = 0;
    let mut bytes = 0usize;
    for p in payloads {
        let size = match p {
            Payload::Command(c) => c.len(),
            Payload::Noop => 0,
            Payload::Config(m) => 16 * m.members().len(),
        };
        if n > 0 && bytes + size > max_bytes {
            break;
        }
        n += 1;
        bytes += size;
    }
    n
}

/// What a receiver made of one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The snapshot is whole.
    Complete(Snapshot),
    /// More is needed, from this offset on (the sender resumes there, whatever it sent).
    NeedFrom(u64),
}

/// A snapshot being received chunk by chunk. It lives as long as the receiving node runs, so
/// a transfer cut by a broken connection resumes where it stopped.
///
/// Chunks are matched by the sender's era and the snapshot's position: one leader holds one
/// snapshot at a position, while two leaders' encodings of the same state need not be equal
/// byte for byte, so a new leader's chunks start over.
#[derive(Clone, Debug, Default)]
pub struct Assembly {
    /// The sender's era, the snapshot's position, and the bytes received so far.
    partial: Option<(u64, Position, Vec<u8>)>,
}

impl Assembly {
    /// Takes the chunk at `offset` of the snapshot at `last`, sent by the leader of `era`. A
    /// chunk of another snapshot or leader starts over (from offset 0); a chunk that does not
    /// continue what is held is ignored, and the answer says where to continue.
    pub fn receive(
        &mut self,
        era: u64,
        last: Position,
        offset: u64,
        data: &[u8],
        done: bool,
        members: Option<&crate::membership::Membership>,
    ) -> Received {
        match &self.partial {
            Some((e, at, _)) if *e == era && *at == last => {}
            _ => {
                if offset != 0 {
                    self.partial = None;
                    return Received::NeedFrom(0);
                }
                self.partial = Some((era, last, Vec::new()));
            }
        }
        let (_, _, buf) = self.partial.as_mut().expect("set above");
        if offset != buf.len() as u64 {
            return Received::NeedFrom(buf.len() as u64);
        }
        buf.extend_from_slice(data);
        if !done {
            return Received::NeedFrom(buf.len() as u64);
        }
        let (_, last, buf) = self.partial.take().expect("set above");
        Received::Complete(Snapshot {
            last,
            data: Bytes::from(buf),
            members: members.cloned().map(Box::new),
        })
    }

    /// Bytes held of an unfinished snapshot.
    pub fn held(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, _, b)| b.len())
    }

    /// Forgets an unfinished snapshot.
    pub fn clear(&mut self) {
        self.partial = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(n: usize) -> Bytes {
        Bytes::from((0..n).map(|i| i as u8).collect::<Vec<_>>())
    }

    #[test]
    fn chunks_cover_the_data_and_the_last_says_done() {
        let data = snap(10);
        assert_eq!(chunk(&data, 0, 4), (data.slice(0..4), false));
        assert_eq!(chunk(&data, 8, 4), (data.slice(8..10), true));
        assert_eq!(chunk(&Bytes::new(), 0, 4), (Bytes::new(), true));
    }

    #[test]
    fn a_snapshot_is_whole_after_its_chunks_in_order() {
        let data = snap(10);
        let last = Position::new(2, 7);
        let mut a = Assembly::default();
        let mut offset = 0;
        loop {
            let (c, done) = chunk(&data, offset, 3);
            match a.receive(1, last, offset, &c, done, None) {
                Received::NeedFrom(n) => offset = n,
                Received::Complete(s) => {
                    assert_eq!(
                        s,
                        Snapshot {
                            last,
                            data,
                            members: None
                        }
                    );
                    break;
                }
            }
        }
        assert_eq!(a.held(), 0);
    }

    #[test]
    fn a_repeated_or_skipped_chunk_is_answered_with_where_to_resume() {
        let data = snap(10);
        let last = Position::new(1, 5);
        let mut a = Assembly::default();
        assert_eq!(
            a.receive(1, last, 0, &data[0..4], false, None),
            Received::NeedFrom(4)
        );
        // A retransmission of the first chunk (the answer was lost): resume at 4.
        assert_eq!(
            a.receive(1, last, 0, &data[0..4], false, None),
            Received::NeedFrom(4)
        );
        // A chunk from further on: still 4.
        assert_eq!(
            a.receive(1, last, 8, &data[8..10], true, None),
            Received::NeedFrom(4)
        );
        assert_eq!(a.held(), 4);
        // A newer snapshot's middle chunk starts over.
        assert_eq!(
            a.receive(1, Position::new(1, 9), 4, &data[4..8], false, None),
            Received::NeedFrom(0)
        );
        assert_eq!(a.held(), 0);
        // So does the same snapshot from another leader.
        assert_eq!(
            a.receive(1, last, 0, &data[0..4], false, None),
            Received::NeedFrom(4)
        );
        assert_eq!(
            a.receive(2, last, 4, &data[4..8], false, None),
            Received::NeedFrom(0)
        );
    }

    #[test]
    fn batches_stop_at_the_byte_budget_but_carry_at_least_one_payload() {
        let big = Payload::Command(Bytes::from(vec![0u8; 700]));
        let small = Payload::Command(Bytes::from(vec![0u8; 10]));
        assert_eq!(fitting([&big, &big, &big], 1000), 1);
        assert_eq!(fitting([&small, &small, &big], 1000), 3);
        assert_eq!(fitting([&big, &small, &small, &big], 1000), 3);
        assert_eq!(fitting([&Payload::Noop; 5], 0), 5);
        assert_eq!(fitting(std::iter::empty(), 1000), 0);
    }
}
