//! What a node's storage was created for, checked at every start: the cluster's sharding
//! mode. It fixes where every key is stored (`Sharding::storage_key`), so a node restarted
//! with another would look its keys up where they are not and answer that they do not
//! exist. It is refused instead, with the mode the data was written in.

use super::disk::Disk;
use super::NodeError;
use crate::io::Storage;
use crate::keyspace::Sharding;

/// The node's own records, apart from any group's.
pub(super) const NODE_PARTITION: &str = "node";
const SHARDING_KEY: &[u8] = b"sharding";

/// Records `sharding` on a fresh disk (written with the node's first batch), or checks it
/// against the one recorded.
pub fn check<S: Storage>(disk: &mut Disk<S>, sharding: Sharding) -> Result<(), NodeError> {
    match disk.storage.get(NODE_PARTITION, SHARDING_KEY)? {
        None => {
            // Into the node's first batch rather than one of its own: synced with it.
            disk.batch.put(NODE_PARTITION, SHARDING_KEY.to_vec(), sharding.name().as_bytes().to_vec());
            Ok(())
        }
        Some(bytes) => {
            let recorded = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse::<Sharding>().ok())
                .ok_or_else(|| NodeError::Corrupt(format!("the recorded sharding mode {bytes:?}")))?;
            if recorded == sharding {
                Ok(())
            } else {
                Err(NodeError::Config(format!(
                    "this node's data was written with {recorded} sharding; it cannot start with {sharding} sharding"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::storage::memory::MemoryStorage;

    #[test]
    fn a_node_keeps_the_sharding_it_was_created_with() {
        let mut disk = Disk::new(MemoryStorage::default(), true);
        check(&mut disk, Sharding::Range).unwrap();
        disk.write_batch().unwrap();
        check(&mut disk, Sharding::Range).expect("the same again");
        let e = check(&mut disk, Sharding::Hash).unwrap_err();
        assert!(matches!(&e, NodeError::Config(m) if m.contains("written with range sharding")), "{e}");
    }
}
