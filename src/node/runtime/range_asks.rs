//! What a node learns of ranges from their replicas: which range a group it does not
//! host is (a skipped split's, or one moved here: adopted, empty), and whether a replica
//! it hosts is still one (replica GC: a removed replica that never heard of its removal
//! drops itself once a newer descriptor no longer lists it).

use super::{Node, LEADERLESS_ASK_MS, RANGE_ASK_INTERVAL_MS};
use crate::codec;
use crate::io::{Storage, Transport};
use crate::keyspace::RangeDescriptor;
use crate::node::group::Replica;
use crate::node::{split, NodeError, Wire};
use crate::state_machine::StateMachine;
use crate::{GroupId, NodeId};
use std::collections::BTreeSet;

/// A replica that has heard nothing of its group this long counts as leaderless (see
/// `Replica::quiet`): far past a heartbeat interval or a partition's usual length.
const QUIET_MS: u64 = 5_000;

impl<T: Transport, S: Storage, M: StateMachine> Node<T, S, M> {
    /// A replica of `group`, which this node does not host, wrote to it: asks which range
    /// it is (see `split.rs`), at most once per `RANGE_ASK_INTERVAL_MS` per range.
    pub(super) fn ask_range(&mut self, now_ms: u64, from: NodeId, group: GroupId) {
        if self.range_asks.get(&group).is_some_and(|&again_ms| now_ms < again_ms) {
            return;
        }
        self.range_asks.retain(|_, again_ms| now_ms < *again_ms);
        if self.range_asks.len() >= crate::keyspace::GROUPS_MAX as usize {
            return;
        }
        self.range_asks.insert(group, now_ms + RANGE_ASK_INTERVAL_MS);
        self.transport.send(from, codec::encode(&Wire::RangeWanted { group }));
    }

    /// A replica that hears no leader for `LEADERLESS_ASK_MS` asks the others its range
    /// lists which range it is now, and again every `LEADERLESS_ASK_MS`: one removed
    /// while it was down or cut off hears no more of its group (the leader stopped
    /// writing to it) and learns so only from a newer descriptor (`on_range_known`).
    pub(super) fn ask_if_still_replica(&mut self, now_ms: u64) {
        let me = self.cfg.id();
        let leaderless: BTreeSet<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.quiet(now_ms, QUIET_MS) && !g.is_removed())
            .map(|(&id, _)| id)
            .collect();
        self.leaderless.retain(|g, _| leaderless.contains(g));
        for id in leaderless {
            let due_ms = *self.leaderless.entry(id).or_insert(now_ms + LEADERLESS_ASK_MS);
            if now_ms < due_ms {
                continue;
            }
            self.leaderless.insert(id, now_ms + LEADERLESS_ASK_MS);
            for &peer in self.groups[&id].range().replicas.iter().filter(|&&n| n != me) {
                self.transport.send(peer, codec::encode(&Wire::RangeWanted { group: id }));
            }
        }
    }

    /// A peer said which range a group is: this node learns it, and starts its missing
    /// replica of it if it is one and nothing it hosts still covers the range's keys; or
    /// drops its replica if it hosts one that the newer descriptor no longer lists.
    pub(super) fn on_range_known(&mut self, now_ms: u64, range: RangeDescriptor) -> Result<(), NodeError> {
        self.topology.map.learn(&range);
        let me = self.cfg.id();
        let server = self.is_server(me);
        if let Some(g) = self.groups.get_mut(&range.id) {
            // Only a replica placed here, not a spare waiting outside the membership, and
            // only by a newer descriptor. On a server every replica is placed, even one
            // whose own descriptor no longer lists it (a snapshot that came after its
            // removal, while it was still a learner: found by the node_loss sweep).
            let placed = server || g.range().replicas.contains(&me);
            if placed && !g.is_removed() && range.generation > g.range().generation && !range.replicas.contains(&me) {
                tracing::info!(node = me, group = range.id, ?range, "replica removed while away: dropping it");
                g.collect(&mut self.disk, &mut self.topology, range, self.observer.as_ref())?;
            }
            return Ok(());
        }
        let mine = range.replicas.contains(&self.cfg.id()) && !self.groups.contains_key(&range.id);
        // A peer that has not applied our replica's removal yet still lists us.
        let left = self.topology.removed.left(&range);
        if !mine || left {
            return Ok(());
        }
        let covering: Vec<(GroupId, Vec<NodeId>)> = self
            .groups
            .values()
            .filter(|g| g.range().overlaps(&range))
            .map(|g| (g.range().id, g.range().replicas.clone()))
            .collect();
        if !covering.is_empty() {
            // A replica here still covers the keys: a parent that has not split yet, or a
            // leftover no longer placed here. Its peers say which (at the pace of these
            // answers, one a `RANGE_ASK_INTERVAL_MS`), and a leftover is dropped.
            for (group, replicas) in covering {
                for &peer in replicas.iter().filter(|&&n| n != me) {
                    self.transport.send(peer, codec::encode(&Wire::RangeWanted { group }));
                }
            }
            return Ok(());
        }
        if self.topology.hosted.len() >= crate::keyspace::GROUPS_MAX as usize {
            tracing::warn!(node = self.cfg.id(), group = range.id, "too many groups to adopt a missing replica");
            return Ok(());
        }
        crate::sometimes!("missing_replica_adopted");
        tracing::info!(
            node = self.cfg.id(),
            group = range.id,
            ?range,
            "adopting a replica (a skipped split's, or moved here)"
        );
        split::adopt_missing(&mut self.disk, &range, &mut self.topology.hosted)?;
        let id = range.id;
        let replica = Replica::recover(&self.cfg, range, &self.disk.storage, now_ms, self.observer.as_ref())?;
        self.groups.insert(id, replica);
        Ok(())
    }
}
