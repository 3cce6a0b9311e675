//! Placement, a sans-IO core run by the meta range's leader: from the directory of ranges
//! and the nodes' reports it decides small, idempotent operations that bring every live
//! node's replica and leader counts within one of the others', and says which range
//! leader should run each (ARCHITECTURE §9; CockroachDB's replicate queue and store
//! rebalancer are the model).
//!
//! ```text
//!   every node, each report interval ─▶ NodeReport { leads } ─▶ heard()
//!   each placement interval: plan(now, directory) ─▶ [Order { leader, op }]
//!        ─▶ Wire::PlacementOrder to the range's leader
//!        ─▶ a replica move (replica_move.rs) or a leadership transfer
//! ```
//!
//! Contract:
//! - **Soft state.** What `heard` learned and the orders in flight live in memory only: a
//!   new meta leader starts empty and plans only after `WARM_UP_MS`, once every live
//!   node has reported to it. An order lost (to a crash, a refusal, a partition) is
//!   forgotten once its leader reports, `ORDER_START_MS` after it was sent, that it runs
//!   no move of the range (a transfer: after `TRANSFER_TIMEOUT_MS`), or at the latest
//!   after `ORDER_TIMEOUT_MS`, and is planned again if it still helps. A move that ended
//!   just before the report and whose descriptor the directory has not applied yet is
//!   forgotten too: the next plan may then order one move more than needed, which the
//!   hysteresis below bounds (it is undone only if it left two nodes two apart).
//! - **Safe by construction elsewhere.** Orders are requests: the range's leader checks
//!   each against the range as it has applied it (`start_move`, Raft's transfer), so a
//!   stale order is refused there. This core adds the rules that keep quorums whole:
//!   one operation per range at a time; a range with a replica on a node not heard from
//!   is left alone (its live replicas are its quorum); at most `NODE_ORDERS_MAX` orders
//!   in flight that touch any one node and `ORDERS_MAX` in all.
//! - **Repairs first.** A server not heard from for `node_dead_ms` is dead: each range
//!   with a replica there, whose other replicas are live and a quorum, has that replica
//!   moved to the live node with the fewest replicas (the move's removal step does not
//!   wait for a node that does not answer). A range that lost its quorum waits: no
//!   operation can change its configuration. A dead node that comes back finds its
//!   replicas gone (replica GC) and is filled like a new one.
//! - **Converges, never oscillates.** A replica moves only from a node holding at least
//!   two more replicas than its target, and a leadership only between nodes two apart:
//!   each operation lowers the sum of squared counts, so the plan ends. Replica counts
//!   end within one of each other (a node two ahead of another holds a range the other
//!   does not; it waits only for that range to be idle). A leadership moves only to a
//!   replica, so leader counts are balanced as far as replicas allow. A move never
//!   changes leader counts (the leader never moves itself) and a transfer never changes
//!   replica counts, so the two goals do not fight.

use crate::keyspace::{RangeDescriptor, META_RANGE};
use crate::raft::PlantedBug;
use crate::{GroupId, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How often the meta leader plans.
pub const PLAN_INTERVAL_MS: u64 = 1_000;
/// A node not heard from for this long is not live: nothing is placed on it or taken
/// from it, and the ranges with a replica on it are left alone.
pub const NODE_SILENT_MS: u64 = 5_000;
/// A node silent this long is dead and its replicas are moved away (the real build's
/// default: long past a restart or an upgrade; CockroachDB waits 5 minutes).
pub const NODE_DEAD_MS_DEFAULT: u64 = 60_000;
/// How long a new meta leader listens before it plans: two report intervals and more.
pub const WARM_UP_MS: u64 = 2_500;
/// An order not seen done by then is forgotten (and planned again if it still helps):
/// a move's own timeout and a snapshot's worth more.
pub const ORDER_TIMEOUT_MS: u64 = 40_000;
/// A move ordered this long ago that its leader's report does not list as running was
/// refused or lost (or is done): a report interval and the order's trip, with slack.
pub const ORDER_START_MS: u64 = 1_500;
/// A leadership transfer ordered this long ago and not seen done failed: it takes an
/// election at most.
pub const TRANSFER_TIMEOUT_MS: u64 = 3_000;
/// Most moves one node report names (a node runs at most 8 at once).
pub const REPORT_MOVING_MAX: usize = 64;
/// Orders in flight in all, and touching any one node (as source, target or leader):
/// bounds the snapshots a node sends and receives at once.
pub const ORDERS_MAX: usize = 8;
pub const NODE_ORDERS_MAX: usize = 2;
/// Most ranges one node report names (every range a node could host).
pub const REPORT_LEADS_MAX: usize = crate::keyspace::GROUPS_MAX as usize + 1;

/// What a node tells placement each report interval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The ranges it leads, at most `REPORT_LEADS_MAX`.
    pub leads: Vec<GroupId>,
    /// The ranges whose replica moves it runs as their leader, at most `REPORT_MOVING_MAX`.
    pub moving: Vec<GroupId>,
    /// The ranges it hosts a replica of, at most `REPORT_LEADS_MAX`: one it hosts that the
    /// directory does not list it for is a leftover waiting for replica GC, and nothing is
    /// moved onto it until that is gone (the leftover, with its old log and term, would
    /// disrupt the range's leader as its learner: found by the `node_loss` sweep).
    pub hosts: Vec<GroupId>,
}

/// One operation, run by the range's leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Move `range`'s replica on `from` to `to` (a learner first, then promoted).
    Move { range: GroupId, from: NodeId, to: NodeId },
    /// Hand `range`'s leadership to `to`, one of its voters.
    TransferLeader { range: GroupId, to: NodeId },
}

impl Op {
    pub fn range(&self) -> GroupId {
        match self {
            Op::Move { range, .. } | Op::TransferLeader { range, .. } => *range,
        }
    }
}

/// An operation and the node that should run it (the range's leader as last heard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub leader: NodeId,
    pub op: Op,
}

#[derive(Clone, Debug)]
struct Heard {
    at_ms: u64,
    leads: BTreeSet<GroupId>,
    moving: BTreeSet<GroupId>,
    hosts: BTreeSet<GroupId>,
}

#[derive(Clone, Debug)]
struct InFlight {
    order: Order,
    sent_ms: u64,
}

#[derive(Debug)]
pub struct Placement {
    /// The nodes that may host replicas (the cluster's servers).
    servers: BTreeSet<NodeId>,
    heard: BTreeMap<NodeId, Heard>,
    in_flight: BTreeMap<GroupId, InFlight>,
    /// When this node began planning as the meta leader (`None`: it does not lead).
    leading_since_ms: Option<u64>,
    node_dead_ms: u64,
    bug: Option<PlantedBug>,
}

/// The counts a plan works on, kept current as it orders.
struct Counts {
    replicas: BTreeMap<NodeId, usize>,
    leaders: BTreeMap<NodeId, usize>,
    /// Orders in flight touching each node.
    busy: BTreeMap<NodeId, usize>,
}

impl Counts {
    fn free(&self, node: NodeId) -> bool {
        self.busy.get(&node).copied().unwrap_or(0) < NODE_ORDERS_MAX
    }

    fn occupy(&mut self, order: &Order) {
        for node in order.nodes() {
            *self.busy.entry(node).or_default() += 1;
        }
    }
}

impl Order {
    /// The nodes an order loads: its leader and a move's two ends.
    fn nodes(&self) -> BTreeSet<NodeId> {
        let mut nodes = BTreeSet::from([self.leader]);
        match self.op {
            Op::Move { from, to, .. } => nodes.extend([from, to]),
            Op::TransferLeader { to, .. } => {
                nodes.insert(to);
            }
        }
        nodes
    }
}

impl Placement {
    /// `node_dead_ms`: how long a server may be silent before its replicas are moved away
    /// (at least `NODE_SILENT_MS`).
    pub fn new(servers: impl IntoIterator<Item = NodeId>, node_dead_ms: u64, bug: Option<PlantedBug>) -> Self {
        Placement {
            servers: servers.into_iter().collect(),
            heard: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            leading_since_ms: None,
            node_dead_ms: node_dead_ms.max(NODE_SILENT_MS),
            bug,
        }
    }

    /// This node leads the meta range (or not): a new leader starts from nothing.
    pub fn set_leading(&mut self, now_ms: u64, leading: bool) {
        match (leading, self.leading_since_ms) {
            (true, None) => self.leading_since_ms = Some(now_ms),
            (false, Some(_)) => {
                self.leading_since_ms = None;
                self.heard.clear();
                self.in_flight.clear();
            }
            _ => {}
        }
    }

    /// `node` reported (reports of non-servers are ignored).
    pub fn heard(&mut self, now_ms: u64, node: NodeId, report: &NodeReport) {
        if self.leading_since_ms.is_none() || !self.servers.contains(&node) {
            return;
        }
        let leads = report.leads.iter().copied().take(REPORT_LEADS_MAX).collect();
        let moving = report.moving.iter().copied().take(REPORT_MOVING_MAX).collect();
        let hosts = report.hosts.iter().copied().take(REPORT_LEADS_MAX).collect();
        self.heard.insert(node, Heard { at_ms: now_ms, leads, moving, hosts });
    }

    /// The nodes heard from within `NODE_SILENT_MS`.
    pub fn live(&self, now_ms: u64) -> BTreeSet<NodeId> {
        self.heard.iter().filter(|(_, h)| now_ms.saturating_sub(h.at_ms) < NODE_SILENT_MS).map(|(&n, _)| n).collect()
    }

    /// The servers silent for `node_dead_ms`: since their last report, or since this node
    /// began leading if it never heard them.
    pub fn dead(&self, now_ms: u64) -> BTreeSet<NodeId> {
        let Some(since) = self.leading_since_ms else { return BTreeSet::new() };
        let silent_ms = |n: &NodeId| now_ms.saturating_sub(self.heard.get(n).map_or(since, |h| h.at_ms));
        self.servers.iter().copied().filter(|n| silent_ms(n) >= self.node_dead_ms).collect()
    }

    /// Orders in flight, oldest range first.
    pub fn in_flight(&self) -> impl Iterator<Item = &Order> {
        self.in_flight.values().map(|f| &f.order)
    }

    /// The leader of `range` as last heard among live nodes (the freshest report wins).
    fn leader_of(&self, now_ms: u64, range: GroupId) -> Option<NodeId> {
        self.heard
            .iter()
            .filter(|(_, h)| now_ms.saturating_sub(h.at_ms) < NODE_SILENT_MS && h.leads.contains(&range))
            .max_by_key(|(&n, h)| (h.at_ms, std::cmp::Reverse(n)))
            .map(|(&n, _)| n)
    }

    /// The orders to send now, given the directory's ranges; each is also held in flight.
    pub fn plan(&mut self, now_ms: u64, ranges: &[RangeDescriptor]) -> Vec<Order> {
        let Some(since) = self.leading_since_ms else { return Vec::new() };
        self.retire(now_ms, ranges);
        if now_ms < since + WARM_UP_MS {
            return Vec::new();
        }
        let live = self.live(now_ms);
        if live.len() < 2 {
            return Vec::new();
        }
        let leaders: BTreeMap<GroupId, NodeId> =
            ranges.iter().filter_map(|r| self.leader_of(now_ms, r.id).map(|l| (r.id, l))).collect();
        let mut counts = self.counts(&live, ranges, &leaders);
        // A range may be operated on if nothing runs on it, its leader is known and one of
        // its replicas, and every replica is live (its quorum is whole). The meta range's
        // replicas count but stay: every node addresses its reports by its cached map of
        // the meta range, which a move would leave stale.
        let mut idle: BTreeMap<GroupId, (&RangeDescriptor, NodeId)> = ranges
            .iter()
            .filter(|r| r.id != META_RANGE && !self.in_flight.contains_key(&r.id))
            .filter_map(|r| leaders.get(&r.id).map(|&l| (r, l)))
            .filter(|(r, l)| r.replicas.contains(l) && r.replicas.iter().all(|n| live.contains(n)))
            .map(|(r, l)| (r.id, (r, l)))
            .collect();
        // A range to repair: a replica on a dead node, the others live and a quorum.
        let dead = self.dead(now_ms);
        let mut broken: BTreeMap<GroupId, (&RangeDescriptor, NodeId, NodeId)> = ranges
            .iter()
            .filter(|r| r.id != META_RANGE && !self.in_flight.contains_key(&r.id))
            .filter_map(|r| leaders.get(&r.id).map(|&l| (r, l)))
            .filter(|(r, l)| r.replicas.contains(l))
            .filter_map(|(r, l)| {
                let lost = r.replicas.iter().copied().find(|n| dead.contains(n))?;
                let alive = r.replicas.iter().filter(|n| live.contains(n)).count();
                let rest_known = r.replicas.iter().all(|n| live.contains(n) || dead.contains(n));
                (rest_known && 2 * alive > r.replicas.len()).then_some((r.id, (r, l, lost)))
            })
            .collect();
        let mut orders = Vec::new();
        while self.in_flight.len() < ORDERS_MAX {
            let Some(order) =
                self.next_repair(&live, &counts, &broken).or_else(|| self.next_order(&live, &counts, &idle))
            else {
                break;
            };
            counts.occupy(&order);
            match order.op {
                Op::Move { from, to, .. } => {
                    // A dead source is not counted.
                    if let Some(c) = counts.replicas.get_mut(&from) {
                        *c -= 1;
                    }
                    *counts.replicas.entry(to).or_default() += 1;
                }
                Op::TransferLeader { to, .. } => {
                    *counts.leaders.entry(order.leader).or_default() -= 1;
                    *counts.leaders.entry(to).or_default() += 1;
                }
            }
            if broken.remove(&order.op.range()).is_some() {
                crate::sometimes!("placement_repair_ordered");
            }
            idle.remove(&order.op.range());
            self.in_flight.insert(order.op.range(), InFlight { order: order.clone(), sent_ms: now_ms });
            orders.push(order);
        }
        orders
    }

    /// Forgets the orders done (as the directory or the reports show), lost or expired.
    fn retire(&mut self, now_ms: u64, ranges: &[RangeDescriptor]) {
        let by_id: BTreeMap<GroupId, &RangeDescriptor> = ranges.iter().map(|r| (r.id, r)).collect();
        let heard = &self.heard;
        self.in_flight.retain(|&range, f| {
            let age_ms = now_ms.saturating_sub(f.sent_ms);
            if age_ms >= ORDER_TIMEOUT_MS {
                return false;
            }
            let Some(r) = by_id.get(&range) else { return false };
            match f.order.op {
                Op::Move { from, to, .. } => {
                    let done = r.replicas.contains(&to) && !r.replicas.contains(&from);
                    // Its leader reported since the order could have started, and runs no move of it.
                    let idle = heard
                        .get(&f.order.leader)
                        .is_some_and(|h| h.at_ms >= f.sent_ms + ORDER_START_MS && !h.moving.contains(&range));
                    !done && !idle
                }
                Op::TransferLeader { to, .. } => {
                    let done = heard.get(&to).is_some_and(|h| h.leads.contains(&range));
                    !done && age_ms < TRANSFER_TIMEOUT_MS
                }
            }
        });
    }

    /// Replica and leader counts of the live nodes, with the orders in flight counted as
    /// done (so that a plan does not order the same correction twice).
    fn counts(
        &self,
        live: &BTreeSet<NodeId>,
        ranges: &[RangeDescriptor],
        leaders: &BTreeMap<GroupId, NodeId>,
    ) -> Counts {
        let mut replicas: BTreeMap<NodeId, usize> = live.iter().map(|&n| (n, 0)).collect();
        let mut leader_counts: BTreeMap<NodeId, usize> = live.iter().map(|&n| (n, 0)).collect();
        for r in ranges {
            let mut on: BTreeSet<NodeId> = r.replicas.iter().copied().collect();
            let mut leader = leaders.get(&r.id).copied();
            match self.in_flight.get(&r.id).map(|f| &f.order.op) {
                Some(&Op::Move { from, to, .. }) => {
                    on.remove(&from);
                    on.insert(to);
                }
                Some(&Op::TransferLeader { to, .. }) => leader = Some(to),
                None => {}
            }
            for n in on {
                if let Some(c) = replicas.get_mut(&n) {
                    *c += 1;
                }
            }
            if let Some(c) = leader.and_then(|l| leader_counts.get_mut(&l)) {
                *c += 1;
            }
        }
        let mut counts = Counts { replicas, leaders: leader_counts, busy: BTreeMap::new() };
        for f in self.in_flight.values() {
            counts.occupy(&f.order);
        }
        counts
    }

    /// Whether a replica of `range` may be moved onto `node`: it hosts no leftover of it.
    fn can_take(&self, node: NodeId, range: GroupId) -> bool {
        !self.heard.get(&node).is_some_and(|h| h.hosts.contains(&range))
    }

    /// A repair: the first range to repair (in id order) whose leader is free, its replica
    /// on the dead node moved to the free live node holding fewest replicas.
    fn next_repair(
        &self,
        live: &BTreeSet<NodeId>,
        counts: &Counts,
        broken: &BTreeMap<GroupId, (&RangeDescriptor, NodeId, NodeId)>,
    ) -> Option<Order> {
        broken.values().filter(|&&(_, leader, _)| counts.free(leader)).find_map(|&(r, leader, from)| {
            let to = live
                .iter()
                .copied()
                .filter(|n| !r.replicas.contains(n) && counts.free(*n) && self.can_take(*n, r.id))
                .min_by_key(|n| (counts.replicas[n], *n))?;
            Some(Order { leader, op: Op::Move { range: r.id, from, to } })
        })
    }

    /// The most useful order now, replicas first: from the fullest live node to the
    /// emptiest, the first idle range (in id order) on the one and not on the other.
    fn next_order(
        &self,
        live: &BTreeSet<NodeId>,
        counts: &Counts,
        idle: &BTreeMap<GroupId, (&RangeDescriptor, NodeId)>,
    ) -> Option<Order> {
        // With the bug planted, balance stops one short: counts three apart stay.
        let gap_min = if PlantedBug::BalanceStopsShort.is_active(self.bug) { 3 } else { 2 };
        let fullest_first = |counts: &BTreeMap<NodeId, usize>| {
            let mut nodes: Vec<(usize, NodeId)> = live.iter().map(|&n| (counts[&n], n)).collect();
            nodes.sort_by_key(|&(c, n)| (std::cmp::Reverse(c), n));
            nodes
        };
        let by_replicas = fullest_first(&counts.replicas);
        for &(high, from) in by_replicas.iter().filter(|&&(_, n)| counts.free(n)) {
            for &(low, to) in by_replicas.iter().rev().filter(|&&(_, n)| counts.free(n)) {
                if high < low + gap_min {
                    break;
                }
                let candidates = idle.values().filter(|(r, _)| {
                    r.replicas.contains(&from) && !r.replicas.contains(&to) && self.can_take(to, r.id)
                });
                let mut led_by_from = None;
                for &(r, leader) in candidates {
                    if leader != from && counts.free(leader) {
                        return Some(Order { leader, op: Op::Move { range: r.id, from, to } });
                    }
                    if leader == from {
                        led_by_from.get_or_insert(r);
                    }
                }
                // Every candidate is led by `from`: its leadership goes first (to the
                // replica leading least), and the move comes in a later plan.
                if let Some(r) = led_by_from {
                    let to = r
                        .replicas
                        .iter()
                        .copied()
                        .filter(|&n| n != from && counts.free(n))
                        .min_by_key(|&n| (counts.leaders[&n], n));
                    if let Some(to) = to {
                        return Some(Order { leader: from, op: Op::TransferLeader { range: r.id, to } });
                    }
                }
            }
        }
        let by_leaders = fullest_first(&counts.leaders);
        for &(high, from) in by_leaders.iter().filter(|&&(_, n)| counts.free(n)) {
            for &(low, to) in by_leaders.iter().rev().filter(|&&(_, n)| counts.free(n)) {
                if high < low + gap_min {
                    break;
                }
                let led = idle.values().find(|&&(r, leader)| leader == from && r.replicas.contains(&to));
                if let Some(&(r, _)) = led {
                    return Some(Order { leader: from, op: Op::TransferLeader { range: r.id, to } });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
