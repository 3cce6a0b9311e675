//! The frame decoder on raw bytes: never panics, never buffers past its bound, and every
//! frame it accepts re-encodes to exactly the bytes it came from.

use crate::io::transport::{Frame, FrameDecoder, FRAME_BODY_BYTES_MAX};

/// Header bytes before the body (length + checksum).
const HEADER_BYTES: usize = 8;

pub fn run(data: &[u8]) {
    // The first byte sets the read size, so that frames straddle reads in every way.
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::default();
    let mut consumed = 0usize;
    for piece in rest.chunks(chunk) {
        if decoder.extend(piece).is_err() {
            return;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let bytes = frame.encode();
                    assert_eq!(&rest[consumed..consumed + bytes.len()], &bytes[..], "a frame re-encodes to its bytes");
                    consumed += bytes.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= HEADER_BYTES + FRAME_BODY_BYTES_MAX + chunk, "decoder holds too much");
    }
    // A whole input decoded as one datagram agrees with the stream decoder.
    if let Ok(frame) = Frame::decode(rest) {
        assert_eq!(frame.encode(), rest, "a datagram frame re-encodes to its bytes");
    }
}
