//! The one place values become bytes: postcard (serde; varint integers, length-prefixed
//! sequences), with a maximum frame size and a format version.
//!
//! Every other module encodes through these functions, so the format can change in one place.
//! Decoding never panics: malformed, truncated, oversized or trailing input is an error value.
//! Why postcard (and not bincode 2, wincode or bitcode): docs/architecture.md#the-wire-and-disk-format.

use postcard::ser_flavors::Flavor;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded value (frame payload) the codec accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Largest encoded state (a state machine's snapshot, a snapshot file) in bytes: states are
/// not frames (they travel in chunks), so their bound is the 32-bit length of a record.
pub const MAX_STATE_BYTES: usize = u32::MAX as usize;

/// The version of the encoding, written in every log directory and peer handshake: a node
/// refuses data and peers of another version. 1 was bincode 2; 2 is postcard 1; 3 adds
/// configuration entries and the configuration a snapshot carries.
pub const FORMAT_VERSION: u32 = 3;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Size of the offending frame.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value could not be encoded.
    #[error("encode failed: {0}")]
    Encode(String),
    /// The bytes are not a valid encoding of the expected type.
    #[error("decode failed: {0}")]
    Decode(String),
    /// A value decoded but bytes were left over.
    #[error("{extra} trailing bytes after a {used}-byte value")]
    TrailingBytes {
        /// Bytes consumed by the value.
        used: usize,
        /// Bytes left over.
        extra: usize,
    },
}

/// Encodes `value` into a new buffer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::new();
    encode_into(value, &mut buf)?;
    Ok(buf)
}

/// Appends to a borrowed buffer, refusing to grow a frame past [`MAX_FRAME_BYTES`].
struct Append<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl Flavor for Append<'_> {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.buf.len() - self.start + data.len() > MAX_FRAME_BYTES {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.buf.len() - self.start >= MAX_FRAME_BYTES {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.buf.len() - self.start)
    }
}

/// Counts bytes without storing them.
#[derive(Default)]
struct Count(usize);

impl Flavor for Count {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// Appends the encoding of `value` to `buf` and returns the number of bytes written.
pub fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<usize, CodecError> {
    let start = buf.len();
    match postcard::serialize_with_flavor(value, Append { buf, start }) {
        Ok(len) => Ok(len),
        Err(postcard::Error::SerializeBufferFull) => {
            buf.truncate(start);
            Err(CodecError::FrameTooLarge {
                len: encoded_len(value)?,
                max: MAX_FRAME_BYTES,
            })
        }
        Err(e) => {
            buf.truncate(start);
            Err(CodecError::Encode(e.to_string()))
        }
    }
}

/// The number of bytes [`encode`] would produce for `value`.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    postcard::serialize_with_flavor(value, Count::default())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Encodes a whole state (a snapshot), which may be larger than a frame.
pub fn encode_state<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let buf = postcard::to_stdvec(value).map_err(|e| CodecError::Encode(e.to_string()))?;
    if buf.len() > MAX_STATE_BYTES {
        return Err(CodecError::FrameTooLarge {
            len: buf.len(),
            max: MAX_STATE_BYTES,
        });
    }
    Ok(buf)
}

/// Decodes a whole state written by [`encode_state`].
pub fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_within(bytes, MAX_STATE_BYTES)
}

/// Decodes exactly one value from `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_within(bytes, MAX_FRAME_BYTES)
}

fn decode_within<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::FrameTooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| CodecError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes {
            used: bytes.len() - rest.len(),
            extra: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, Position};
    use bytes::Bytes;

    #[test]
    fn round_trips_an_entry() {
        let e = Entry::command(Position::new(3, 9), Bytes::from_static(b"hello"));
        let bytes = encode(&e).unwrap();
        assert_eq!(encoded_len(&e).unwrap(), bytes.len());
        assert_eq!(decode::<Entry>(&bytes).unwrap(), e);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let e = Entry::command(Position::new(3, 9), Bytes::from_static(b"hello"));
        let bytes = encode(&e).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode::<Entry>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut x: u32 = 12345;
        for len in 0..200 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = decode::<Vec<Entry>>(&garbage);
        }
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        // A varint length of u64::MAX for a byte string and for a sequence: must fail fast,
        // not allocate.
        let bytes = [255u8, 255, 255, 255, 255, 255, 255, 255, 255, 1];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
        assert!(decode::<bytes::Bytes>(&bytes).is_err());
        assert!(decode::<Vec<Entry>>(&bytes).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes),
            Err(CodecError::TrailingBytes { used: 1, extra: 1 })
        );
    }

    #[test]
    fn oversized_frames_are_rejected() {
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert!(matches!(
            encode(&big),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert!(matches!(
            decode::<Vec<u8>>(&big),
            Err(CodecError::FrameTooLarge { .. })
        ));
    }
}
