//! Peer authentication with the cluster secret, for the TCP transport.
//!
//! Connections are one-way (the connecting node only writes), so only the accepting side
//! must be convinced. A challenge-response proves knowledge of the secret without sending
//! it, and every later frame carries a MAC under a key fresh to the connection, with a
//! counter, so a frame cannot be forged, altered, replayed or reordered:
//!
//! ```text
//!   acceptor ── "PDB1" nonce_a (16 B) ──────────────────────────────▶ connector
//!   acceptor ◀── Frame{from, nonce_c (16 B) proof (32 B)} ─────────── connector
//!      proof = HMAC-SHA256(secret, "phantomdb/hello/v1" ‖ nonce_a ‖ nonce_c ‖ from)
//!      key   = HMAC-SHA256(secret, "phantomdb/session/v1" ‖ nonce_a ‖ nonce_c ‖ from)
//!   acceptor ◀── Frame{from, tag (16 B) ‖ payload} ... ──────────────── connector
//!      tag   = HMAC-SHA256(key, seq ‖ payload)[..16], seq = 0, 1, 2, ... per connection
//! ```
//!
//! Without a configured secret the key is empty: the same protocol runs (frames are still
//! bound to their connection), but anyone can join; the node warns at start. Pure: the
//! caller supplies the nonces.

use crate::NodeId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const MAGIC: &[u8; 4] = b"PDB1";
pub const NONCE_BYTES: usize = 16;
/// What the acceptor sends first.
pub const CHALLENGE_BYTES: usize = MAGIC.len() + NONCE_BYTES;
const PROOF_BYTES: usize = 32;
/// The hello frame's payload.
pub const HELLO_BYTES: usize = NONCE_BYTES + PROOF_BYTES;
pub const TAG_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the peer did not start with the PhantomDB handshake")]
    BadChallenge,
    #[error("the hello is {0} bytes, expected {HELLO_BYTES}")]
    BadHello(usize),
    #[error("wrong cluster secret")]
    WrongSecret,
    #[error("frame authentication failed")]
    BadTag,
}

/// The cluster secret. Debug output never shows it.
#[derive(Clone, Default)]
pub struct ClusterSecret(Vec<u8>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSecret({} bytes)", self.0.len())
    }
}

impl ClusterSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        ClusterSecret(bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, label: &[u8], nonce_a: &[u8], nonce_c: &[u8], from: NodeId) -> [u8; 32] {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(label);
        m.update(nonce_a);
        m.update(nonce_c);
        m.update(&from.to_le_bytes());
        m.finalize().into_bytes().into()
    }
}

pub fn challenge(nonce_a: [u8; NONCE_BYTES]) -> [u8; CHALLENGE_BYTES] {
    let mut out = [0; CHALLENGE_BYTES];
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()..].copy_from_slice(&nonce_a);
    out
}

/// The connector's side: answers the acceptor's challenge. Returns the hello payload and
/// the sealer for the frames that follow.
pub fn answer(
    secret: &ClusterSecret,
    challenge: &[u8; CHALLENGE_BYTES],
    nonce_c: [u8; NONCE_BYTES],
    from: NodeId,
) -> Result<(Vec<u8>, Sealer), AuthError> {
    if &challenge[..MAGIC.len()] != MAGIC {
        return Err(AuthError::BadChallenge);
    }
    let nonce_a = &challenge[MAGIC.len()..];
    let mut hello = nonce_c.to_vec();
    hello.extend_from_slice(&secret.mac(b"phantomdb/hello/v1", nonce_a, &nonce_c, from));
    let key = secret.mac(b"phantomdb/session/v1", nonce_a, &nonce_c, from);
    Ok((hello, Sealer { key, seq: 0 }))
}

/// The acceptor's side: checks the hello frame of `from`. Returns the opener for the
/// frames that follow.
pub fn verify(
    secret: &ClusterSecret,
    nonce_a: &[u8; NONCE_BYTES],
    from: NodeId,
    hello: &[u8],
) -> Result<Opener, AuthError> {
    if hello.len() != HELLO_BYTES {
        return Err(AuthError::BadHello(hello.len()));
    }
    let (nonce_c, proof) = hello.split_at(NONCE_BYTES);
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(&secret.0).expect("HMAC takes any key length");
    m.update(b"phantomdb/hello/v1");
    m.update(nonce_a);
    m.update(nonce_c);
    m.update(&from.to_le_bytes());
    // Constant-time comparison.
    m.verify_slice(proof).map_err(|_| AuthError::WrongSecret)?;
    Ok(Opener { key: secret.mac(b"phantomdb/session/v1", nonce_a, nonce_c, from), seq: 0 })
}

fn tag(key: &[u8; 32], seq: u64, payload: &[u8]) -> HmacSha256 {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(&seq.to_le_bytes());
    m.update(payload);
    m
}

/// Adds tags to a connection's outgoing payloads.
pub struct Sealer {
    key: [u8; 32],
    seq: u64,
}

impl Sealer {
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let t = tag(&self.key, self.seq, payload).finalize().into_bytes();
        self.seq += 1;
        let mut out = Vec::with_capacity(TAG_BYTES + payload.len());
        out.extend_from_slice(&t[..TAG_BYTES]);
        out.extend_from_slice(payload);
        out
    }
}

/// Checks and strips the tags of a connection's incoming payloads.
pub struct Opener {
    key: [u8; 32],
    seq: u64,
}

impl Opener {
    pub fn open(&mut self, sealed: Vec<u8>) -> Result<Vec<u8>, AuthError> {
        if sealed.len() < TAG_BYTES {
            return Err(AuthError::BadTag);
        }
        let (t, payload) = sealed.split_at(TAG_BYTES);
        tag(&self.key, self.seq, payload).verify_truncated_left(t).map_err(|_| AuthError::BadTag)?;
        self.seq += 1;
        Ok(payload.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> ClusterSecret {
        ClusterSecret::new(s.as_bytes().to_vec())
    }

    fn handshake(connector: &ClusterSecret, acceptor: &ClusterSecret) -> Result<(Sealer, Opener), AuthError> {
        let nonce_a = [7; NONCE_BYTES];
        let (hello, sealer) = answer(connector, &challenge(nonce_a), [9; NONCE_BYTES], 3)?;
        let opener = verify(acceptor, &nonce_a, 3, &hello)?;
        Ok((sealer, opener))
    }

    #[test]
    fn the_same_secret_authenticates_and_frames_round_trip() {
        let (mut s, mut o) = handshake(&secret("sesame"), &secret("sesame")).unwrap();
        for msg in [&b"one"[..], b"", b"three"] {
            assert_eq!(o.open(s.seal(msg)).unwrap(), msg);
        }
    }

    #[test]
    fn a_wrong_secret_or_a_forged_sender_is_refused() {
        assert_eq!(handshake(&secret("sesame"), &secret("other")).err(), Some(AuthError::WrongSecret));
        assert_eq!(handshake(&ClusterSecret::default(), &secret("sesame")).err(), Some(AuthError::WrongSecret));
        let nonce_a = [7; NONCE_BYTES];
        let (hello, _) = answer(&secret("k"), &challenge(nonce_a), [9; NONCE_BYTES], 3).unwrap();
        assert_eq!(verify(&secret("k"), &nonce_a, 4, &hello).err(), Some(AuthError::WrongSecret), "claims node 4");
        assert_eq!(verify(&secret("k"), &[8; NONCE_BYTES], 3, &hello).err(), Some(AuthError::WrongSecret), "replayed");
        assert_eq!(verify(&secret("k"), &nonce_a, 3, &hello[1..]).err(), Some(AuthError::BadHello(HELLO_BYTES - 1)));
        let mut bad = challenge(nonce_a);
        bad[0] = b'X';
        assert_eq!(answer(&secret("k"), &bad, [0; NONCE_BYTES], 3).err(), Some(AuthError::BadChallenge));
    }

    #[test]
    fn altered_replayed_or_reordered_frames_are_refused() {
        let (mut s, mut o) = handshake(&secret("k"), &secret("k")).unwrap();
        let first = s.seal(b"first");
        let second = s.seal(b"second");
        let mut altered = first.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(o.open(altered), Err(AuthError::BadTag));
        assert_eq!(o.open(second.clone()), Err(AuthError::BadTag), "out of order");
        assert_eq!(o.open(first.clone()).unwrap(), b"first");
        assert_eq!(o.open(first), Err(AuthError::BadTag), "replayed");
        assert_eq!(o.open(second).unwrap(), b"second");
        assert_eq!(o.open(vec![1, 2]), Err(AuthError::BadTag));
    }
}
