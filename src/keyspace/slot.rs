//! Redis Cluster's key slots: a key's slot is CRC16 (XMODEM) of the key, or of its hash tag,
//! mod 16384 (Redis Cluster specification, "Keys distribution model" and "Hash tags").
//! Keys that share a `{tag}` share a slot, so a multi-key request on them stays in one
//! range; cluster-aware Redis clients compute the same slot and can route by it.
//!
//! The function is fixed forever: a key must stay where it was written.

/// The slots of the key space.
pub const SLOTS: u16 = 16_384;

/// CRC16-CCITT, XMODEM variant (polynomial 0x1021, initial value 0, no reflection), the
/// checksum Redis Cluster hashes keys with. Bitwise: keys are short and the table-free
/// form is eight lines.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The part of `key` that is hashed: what lies between the first `{` and the first `}`
/// after it, if that is not empty; otherwise the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else { return key };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

/// The slot of `key`, in `0..SLOTS`.
pub fn slot(key: &[u8]) -> u16 {
    crc16_xmodem(hash_tag(key)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_redis_clusters() {
        // The check value of CRC-16/XMODEM, and the example of the cluster specification.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(slot(b"123456789"), 0x31c3 % SLOTS);
        // Pinned against Redis (`CLUSTER KEYSLOT foo` is 12182, `bar` 5061).
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"bar"), 5_061);
    }

    #[test]
    fn hash_tags_follow_the_specification() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"{user1000}.followers"), slot(b"user1000"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}", "an empty first tag: the whole key");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar", "from the first {{ to the first }} after it");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar", "only the first tag counts");
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar", "no closing brace: the whole key");
    }
}
