//! The frame: how one payload travels on a byte stream (TCP) or as one datagram (sim).
//!
//! ```text
//!   0      4        8          16
//!   | len  | crc32  | from u64 | payload ... |
//!   len = bytes after the 8-byte header (from + payload), little endian
//!   crc32 (IEEE) over those bytes
//! ```

use crate::NodeId;

/// The largest frame body accepted; a larger length prefix is an error before any
/// allocation.
pub const FRAME_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;
const HEADER_BYTES: usize = 8;
const FROM_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub from: NodeId,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame body of {0} bytes exceeds the limit of {FRAME_BODY_BYTES_MAX}")]
    TooLarge(usize),
    #[error("frame body of {0} bytes is shorter than its sender id")]
    TooShort(usize),
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("{0} bytes after the frame")]
    Trailing(usize),
    #[error("incomplete frame")]
    Incomplete,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let body_len = FROM_BYTES + self.payload.len();
        assert!(body_len <= FRAME_BODY_BYTES_MAX, "frame of {body_len} bytes exceeds the limit");
        let mut out = Vec::with_capacity(HEADER_BYTES + body_len);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.from.to_le_bytes());
        out.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&out[HEADER_BYTES..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes exactly one frame occupying all of `bytes` (a datagram).
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut d = FrameDecoder::default();
        d.extend(bytes)?;
        let frame = d.next_frame()?.ok_or(FrameError::Incomplete)?;
        match d.buffered() {
            0 => Ok(frame),
            n => Err(FrameError::Trailing(n)),
        }
    }
}

/// Cuts frames out of a byte stream. After an error the stream is unusable: close it.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Adds received bytes. A length prefix over the limit is refused as soon as its four
    /// bytes arrive, so a reader that takes every complete frame after each `extend`
    /// never holds more than one maximal frame plus one read.
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        self.check_header()
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn check_header(&self) -> Result<(), FrameError> {
        if self.buf.len() >= 4 {
            let len = u32::from_le_bytes(self.buf[0..4].try_into().expect("4 bytes")) as usize;
            if len > FRAME_BODY_BYTES_MAX {
                return Err(FrameError::TooLarge(len));
            }
            if len < FROM_BYTES {
                return Err(FrameError::TooShort(len));
            }
        }
        Ok(())
    }

    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        self.check_header()?;
        if self.buf.len() < HEADER_BYTES {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[0..4].try_into().expect("4 bytes")) as usize;
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let crc = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes"));
        let body = &self.buf[HEADER_BYTES..HEADER_BYTES + len];
        if crc32fast::hash(body) != crc {
            return Err(FrameError::Checksum);
        }
        let from = u64::from_le_bytes(body[0..FROM_BYTES].try_into().expect("8 bytes"));
        let payload = body[FROM_BYTES..].to_vec();
        self.buf.drain(..HEADER_BYTES + len);
        Ok(Some(Frame { from, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let frames = [Frame { from: 3, payload: b"hello".to_vec() }, Frame { from: 9, payload: vec![] }];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            d.extend(chunk).unwrap();
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn corruption_is_detected() {
        let mut bytes = Frame { from: 1, payload: b"x".to_vec() }.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(Frame::decode(&bytes), Err(FrameError::Checksum));
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_buffering_the_body() {
        let mut d = FrameDecoder::default();
        assert_eq!(d.extend(&(1u32 << 31).to_le_bytes()), Err(FrameError::TooLarge(1 << 31)));
        assert_eq!(Frame::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0]), Err(FrameError::TooShort(1)));
    }

    #[test]
    fn trailing_bytes_in_a_datagram_are_refused() {
        let mut bytes = Frame { from: 1, payload: b"x".to_vec() }.encode();
        bytes.push(7);
        assert_eq!(Frame::decode(&bytes), Err(FrameError::Trailing(1)));
    }
}
