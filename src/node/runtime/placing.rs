//! The node's side of placement (`crate::placement`): every node reports what it leads
//! to the meta range's replicas; the meta range's leader plans from those reports and
//! its directory, once a placement interval, and sends each order to the range's leader,
//! which runs it as a replica move (`range_work.rs`) or a leadership transfer.
//!
//! Best-effort on purpose, like the range reports: an order lost or refused (the range
//! moved on, its leader changed, it runs a move already) is dropped here and expires in
//! the planner, which plans again from what the directory then says.

use super::Node;
use crate::codec;
use crate::io::{Storage, Transport};
use crate::keyspace::META_RANGE;
use crate::node::{directory_reports, ControlError, NodeError, Wire};
use crate::placement::{NodeReport, Op, PLAN_INTERVAL_MS, REPORT_LEADS_MAX, REPORT_MOVING_MAX};
use crate::state_machine::StateMachine;
use crate::NodeId;

impl<T: Transport, S: Storage, M: StateMachine> Node<T, S, M> {
    /// What this node leads, hosts and moves, for placement: sent with the range reports,
    /// once an interval.
    pub(super) fn report_node(&mut self, now_ms: u64, meta_replicas: &[NodeId]) {
        let leads = self
            .groups
            .values()
            .filter(|g| g.raft.is_leader() && !g.is_removed())
            .map(|g| g.range().id)
            .take(REPORT_LEADS_MAX)
            .collect();
        let moving = self.moves.keys().copied().take(REPORT_MOVING_MAX).collect();
        let hosts =
            self.groups.values().filter(|g| !g.is_removed()).map(|g| g.range().id).take(REPORT_LEADS_MAX).collect();
        let report = NodeReport { leads, moving, hosts };
        let me = self.cfg.id();
        for &peer in meta_replicas.iter().filter(|&&n| n != me) {
            self.transport.send(peer, codec::encode(&Wire::NodeReport { report: report.clone() }));
        }
        self.placement.heard(now_ms, me, &report);
    }

    /// Plans once an interval if this node leads the meta range, and sends the orders.
    pub(super) fn plan_placement(&mut self, now_ms: u64) -> Result<(), NodeError> {
        let meta = self.groups.get(&META_RANGE).filter(|g| g.raft.is_leader() && !g.is_removed());
        self.placement.set_leading(now_ms, meta.is_some());
        let Some(meta) = meta else { return Ok(()) };
        if !self.cfg.placement || now_ms < self.next_plan_ms {
            return Ok(());
        }
        self.next_plan_ms = now_ms + PLAN_INTERVAL_MS;
        let directory = directory_reports::read(&self.disk.storage, meta.founding())?;
        let me = self.cfg.id();
        for order in self.placement.plan(now_ms, directory.ranges()) {
            tracing::info!(node = me, leader = order.leader, op = ?order.op, "placement ordered");
            if order.leader == me {
                self.on_placement_order(now_ms, order.op);
            } else {
                self.transport.send(order.leader, codec::encode(&Wire::PlacementOrder { op: order.op }));
            }
        }
        Ok(())
    }

    /// Runs an order of the meta range's leader, if it still holds here.
    pub(super) fn on_placement_order(&mut self, now_ms: u64, op: Op) {
        let node = self.cfg.id();
        let result = match op {
            Op::Move { range, from, to } => self.start_move(now_ms, range, Some(from), to).map(|_| {
                crate::sometimes!("placement_moved_replica");
                tracing::info!(node, range, from, to, "replica move started by placement");
            }),
            Op::TransferLeader { range, to } => match self.groups.get_mut(&range) {
                None => Err(ControlError::NoSuchGroup(range)),
                Some(g) => g.raft.transfer_leadership(now_ms, to).map_err(ControlError::from).map(|()| {
                    crate::sometimes!("placement_transferred_leader");
                    tracing::info!(node, range, to, "leadership transfer started by placement");
                }),
            },
        };
        match result {
            Ok(()) => {
                if let Some(g) = self.groups.get_mut(&op.range()) {
                    g.placement_ops += 1;
                }
            }
            Err(e) => tracing::debug!(node, ?op, error = %e, "placement order refused"),
        }
    }
}
