//! Replication restored — placement's repair goal (issue 10's "a range on a node that left
//! restored to its replication factor"; CockroachDB's replicate queue replaces the
//! replicas of a store dead for `server.time_until_store_dead`): when the final reads
//! begin, every range of user keys lists exactly `replication_factor` replicas, each on a
//! server. A range left with a replica on a node that was dead, or one moved half-way
//! (four replicas listed), fails it.
//!
//! Read from the same replay as `replica_balance` (the newest descriptor each range
//! applied before the final reads). The meta range is not counted: placement leaves its
//! replicas where the cluster put them.

use phantomdb::keyspace::{RangeDescriptor, META_RANGE};
use phantomdb::NodeId;

pub fn check(ranges: &[RangeDescriptor], replication_factor: usize, servers: &[NodeId]) -> Vec<String> {
    let mut v = Vec::new();
    for r in ranges.iter().filter(|r| r.id != META_RANGE) {
        if r.replicas.len() != replication_factor {
            v.push(format!(
                "range {} generation {} lists {} replicas {:?} at the end of the healed phase, not {replication_factor}",
                r.id,
                r.generation,
                r.replicas.len(),
                r.replicas
            ));
        }
        if let Some(n) = r.replicas.iter().find(|n| !servers.contains(n)) {
            v.push(format!("range {} lists n{n}, which is not a server: {:?}", r.id, r.replicas));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(id: u64, replicas: &[NodeId]) -> RangeDescriptor {
        RangeDescriptor { id, start: vec![id as u8], end: None, generation: 3, replicas: replicas.to_vec() }
    }

    #[test]
    fn fails_a_range_short_of_its_factor_or_half_moved_and_ignores_the_meta_range() {
        let servers = [1, 2, 3, 4, 5];
        assert_eq!(
            check(&[range(1, &[1, 2, 3]), range(META_RANGE, &[1, 2, 3, 4, 5])], 3, &servers),
            Vec::<String>::new()
        );
        let v = check(&[range(1, &[1, 2]), range(2, &[1, 2, 3, 4])], 3, &servers);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("range 1 generation 3 lists 2 replicas"), "{v:?}");
        assert!(v[1].contains("range 2 generation 3 lists 4 replicas"), "{v:?}");
        let v = check(&[range(1, &[1, 2, 9])], 3, &servers);
        assert!(v[0].contains("n9, which is not a server"), "{v:?}");
    }
}
