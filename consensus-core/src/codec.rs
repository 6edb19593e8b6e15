//! The one place values become bytes: bincode 2 (serde), with a maximum frame size.
//!
//! Every other module encodes through these functions, so the format can change in one place.
//! Decoding never panics: malformed, truncated, oversized or trailing input is an error value.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use bincode::enc::write::{SizeWriter, Writer};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded value (frame payload) the codec accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

type Cfg = Configuration<LittleEndian, Varint, Limit<MAX_FRAME_BYTES>>;

fn cfg() -> Cfg {
    config::standard().with_limit::<MAX_FRAME_BYTES>()
}

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

struct VecWriter<'a>(&'a mut Vec<u8>);

impl Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Appends the encoding of `value` to `buf` and returns the number of bytes written.
pub fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<usize, CodecError> {
    let start = buf.len();
    bincode::serde::encode_into_writer(value, VecWriter(buf), cfg())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = buf.len() - start;
    if len > MAX_FRAME_BYTES {
        buf.truncate(start);
        return Err(CodecError::FrameTooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(len)
}

/// The number of bytes [`encode`] would produce for `value`.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    let mut w = SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut w, cfg())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(w.bytes_written)
}

/// Decodes exactly one value from `bytes`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(CodecError::FrameTooLarge {
            len: bytes.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, cfg())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            used,
            extra: bytes.len() - used,
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
        // A varint length of u64::MAX for a byte string: must fail fast, not allocate.
        let bytes = [251u8, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
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
