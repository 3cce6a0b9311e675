//! The one binary encoding used on the wire and on disk: bincode 2 (serde mode) with a
//! fixed configuration and a hard decode limit, so that a hostile or corrupt length prefix
//! can never make us allocate more than `limit_bytes`.

use serde::{de::DeserializeOwned, Serialize};

/// Why a value could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{extra_bytes} trailing bytes after the value")]
    Trailing { extra_bytes: usize },
}

/// Encodes `value`. Encoding into a `Vec` cannot fail for our types (no maps with
/// non-serializable keys, no `serialize_with` that errors), so a failure is a bug.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("bincode encoding of an in-memory value cannot fail")
}

/// Decodes exactly one value from `bytes`, refusing to allocate more than `limit_bytes`
/// and refusing trailing garbage (so every accepted input re-encodes to itself).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit_bytes: usize) -> Result<T, DecodeError> {
    // Two limits: the input itself may not exceed `limit_bytes`, and no length claimed
    // inside it may make bincode allocate more than DECODE_CLAIM_BYTES_MAX (bincode's limit
    // is a compile-time constant). A lying length prefix then fails instead of allocating.
    if bytes.len() > limit_bytes {
        return Err(DecodeError::Malformed(format!("{} bytes exceed the limit of {limit_bytes}", bytes.len())));
    }
    let config = bincode::config::standard().with_limit::<{ DECODE_CLAIM_BYTES_MAX }>();
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::Trailing { extra_bytes: bytes.len() - read });
    }
    Ok(value)
}

/// The most any length claimed inside an encoding may make the decoder allocate.
/// Frames are limited to far less (see `io::transport::frame`), so this only guards
/// against claims that lie about their length.
pub const DECODE_CLAIM_BYTES_MAX: usize = 64 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing_bytes_refused() {
        let v: (u64, Vec<u8>) = (7, b"abc".to_vec());
        let mut bytes = encode(&v);
        assert_eq!(decode::<(u64, Vec<u8>)>(&bytes, 1024).unwrap(), v);
        bytes.push(0);
        assert!(matches!(decode::<(u64, Vec<u8>)>(&bytes, 1024), Err(DecodeError::Trailing { .. })));
    }

    #[test]
    fn a_huge_claimed_length_is_refused_without_allocating() {
        // varint 0xFB + u64 length ~2^40 for a Vec<u8>
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<Vec<u8>>(&bytes, 1024).is_err());
    }

    #[test]
    fn input_over_the_limit_is_refused() {
        let bytes = encode(&vec![0u8; 100]);
        assert!(decode::<Vec<u8>>(&bytes, 10).is_err());
    }
}
