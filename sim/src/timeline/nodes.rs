//! The node lanes of the timeline: up, down, stopped on a storage failure, leadership
//! per group, the network cut (partition sides, isolation, clogged links) as bands, and
//! ticks for restarts and the node's other notable events (see the parent module's doc for
//! what the trace can and cannot tell).

use super::draw::{self, secs, Cap, Plot};
use super::{BANDS_MAX, LEADER_BARS_MAX, NODE_TICKS_MAX};
use crate::faults::{clock, disk, network, process, FaultEvent};
use crate::scenario::Scenario;
use crate::trace::{TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// Pixel height of one group's leadership row in a node lane.
fn row_height(groups: u64) -> u32 {
    (16 / groups.max(1) as u32).max(5)
}

/// State of the node lanes while the trace is read: intervals still open.
#[derive(Default)]
struct NodeState {
    /// (group) -> (node, term, since).
    leader: BTreeMap<GroupId, (NodeId, u64, u64)>,
    down: BTreeMap<NodeId, u64>,
    poisoned: BTreeMap<NodeId, u64>,
    /// The network cut in force: since, sides, the isolated node if it was an isolation.
    cut: Option<(u64, Vec<Vec<NodeId>>, Option<NodeId>)>,
    clogs: BTreeMap<(NodeId, NodeId), u64>,
}

struct NodeLanes {
    /// Top of each node's lane.
    top: BTreeMap<NodeId, u32>,
    height: u32,
    row: u32,
    leader_bars: Cap,
    bands: Cap,
    ticks: BTreeMap<NodeId, Cap>,
}

impl NodeLanes {
    fn row_y(&self, node: NodeId, group: GroupId) -> u32 {
        self.top.get(&node).copied().unwrap_or(0) + 3 + (group.saturating_sub(1) as u32) * self.row
    }

    fn tick(&mut self, plot: &mut Plot, node: NodeId, t: u64, class: &str, title: &str) {
        let Some(&top) = self.top.get(&node) else { return };
        let cap = self.ticks.entry(node).or_insert_with(|| Cap::new("node ticks", NODE_TICKS_MAX));
        if plot.allow(cap) {
            plot.line(2, t, top, self.height, class, &format!("{} n{node}: {title}", secs(t)));
        }
    }

    fn close_leader(&mut self, plot: &mut Plot, group: GroupId, lead: (NodeId, u64, u64), t: u64, why: &str) {
        let (node, term, since) = lead;
        if plot.allow(&mut self.leader_bars) {
            let class = if term % 2 == 0 { "lead" } else { "lead alt" };
            let title = format!("n{node} leads group {group} in term {term}, {}–{} ({why})", secs(since), secs(t));
            let y = self.row_y(node, group);
            plot.rect(1, (since, t), (y, self.row - 1), class, &title);
        }
    }

    fn close_node(&mut self, plot: &mut Plot, st: &mut NodeState, node: NodeId, t: u64, why: &str) {
        let groups: Vec<GroupId> = st.leader.iter().filter(|(_, l)| l.0 == node).map(|(g, _)| *g).collect();
        for g in groups {
            let lead = st.leader.remove(&g).expect("listed");
            self.close_leader(plot, g, lead, t, why);
        }
    }

    fn close_state(&mut self, plot: &mut Plot, map: &mut BTreeMap<NodeId, u64>, node: NodeId, t: u64, class: &str) {
        if let (Some(since), Some(&top)) = (map.remove(&node), self.top.get(&node)) {
            let what = if class == "down" { "down (crashed)" } else { "stopped: storage failed" };
            plot.rect(
                1,
                (since, t),
                (top, self.height),
                class,
                &format!("n{node} {what}, {}–{}", secs(since), secs(t)),
            );
        }
    }

    fn close_cut(&mut self, plot: &mut Plot, st: &mut NodeState, t: u64) {
        if let Some((since, sides, isolated)) = st.cut.take() {
            let what = match isolated {
                Some(n) => format!("n{n} isolated"),
                None => format!("partition {sides:?}"),
            };
            for (i, side) in sides.iter().enumerate() {
                for n in side {
                    let class = match isolated {
                        Some(iso) if iso == *n => "band iso".to_string(),
                        Some(_) => continue,
                        None => format!("band side{}", i % 3),
                    };
                    if let Some(&top) = self.top.get(n) {
                        if plot.allow(&mut self.bands) {
                            let title = format!("{what}, {}–{}", secs(since), secs(t));
                            plot.rect(0, (since, t), (top, self.height), &class, &title);
                        }
                    }
                }
            }
        }
        for ((from, to), since) in std::mem::take(&mut st.clogs) {
            if let Some(&top) = self.top.get(&from) {
                if plot.allow(&mut self.bands) {
                    let title = format!("clog n{from}->n{to}, {}–{}", secs(since), secs(t));
                    plot.rect(1, (since, t), (top + self.height - 3, 3), "clog", &title);
                }
            }
        }
    }
}

pub(super) fn lanes(plot: &mut Plot, scenario: &Scenario, trace: &[TraceEvent]) {
    // The nodes the scenario starts with, and any that joins later (membership changes).
    let mut nodes: BTreeSet<NodeId> = (1..=scenario.nodes).collect();
    nodes.extend(trace.iter().filter_map(|e| match e.kind {
        TraceKind::Node { node, .. } => Some(node),
        _ => None,
    }));
    let row = row_height(scenario.groups);
    let height = 6 + row * scenario.groups as u32;
    let mut top = BTreeMap::new();
    for &n in &nodes {
        let y = plot.lane(&format!("n{n}"), height);
        plot.rect(0, (0, plot.end_ns), (y, height), "up", &format!("n{n}: up, a follower unless a bar shows it leads"));
        top.insert(n, y);
    }
    let mut lanes = NodeLanes {
        top,
        height,
        row,
        leader_bars: Cap::new("leader bars", LEADER_BARS_MAX),
        bands: Cap::new("partition and clog bands", BANDS_MAX),
        ticks: BTreeMap::new(),
    };
    let mut st = NodeState::default();
    for e in trace {
        let t = e.t_ns;
        match &e.kind {
            TraceKind::Node { node, group, event } => match event {
                NodeEvent::BecameLeader { term } => {
                    if let Some(prev) = st.leader.remove(group) {
                        lanes.close_leader(plot, *group, prev, t, &format!("until n{node} won term {term}"));
                    }
                    st.leader.insert(*group, (*node, *term, t));
                }
                NodeEvent::Poisoned { error } => {
                    lanes.close_node(plot, &mut st, *node, t, "until its storage failed");
                    st.poisoned.entry(*node).or_insert(t);
                    lanes.tick(plot, *node, t, "tick poison", &format!("storage failed: {}", draw::cut(error, 200)));
                }
                NodeEvent::Recovered { term, snapshot_index, last_index, applied_index } => lanes.tick(
                    plot,
                    *node,
                    t,
                    "tick restart",
                    &format!(
                        "group {group} recovered: term {term}, log cut at {snapshot_index}, log to {last_index}, \
                         applied to {applied_index}"
                    ),
                ),
                NodeEvent::Truncated { from } => {
                    lanes.tick(plot, *node, t, "tick trunc", &format!("group {group} truncated its log from {from}"))
                }
                NodeEvent::SnapshotInstalled { index, term } => lanes.tick(
                    plot,
                    *node,
                    t,
                    "tick snap",
                    &format!("group {group} installed a snapshot to {index} (term {term})"),
                ),
                NodeEvent::ConfigAppended { index, voters, outgoing, .. } => lanes.tick(
                    plot,
                    *node,
                    t,
                    "tick config",
                    &format!("group {group} appended configuration {voters:?} (outgoing {outgoing:?}) at {index}"),
                ),
                _ => {}
            },
            TraceKind::Fault(f) => match f {
                FaultEvent::Process(process::Applied::Crashed { node, .. }) => {
                    lanes.close_node(plot, &mut st, *node, t, "until it crashed");
                    lanes.close_state(plot, &mut st.poisoned, *node, t, "poisoned");
                    st.down.entry(*node).or_insert(t);
                    lanes.tick(plot, *node, t, "tick crash", "crashed");
                }
                FaultEvent::Process(
                    process::Applied::Restarted { node } | process::Applied::HealRestarted { node },
                ) => {
                    lanes.close_state(plot, &mut st.down, *node, t, "down");
                    lanes.close_state(plot, &mut st.poisoned, *node, t, "poisoned");
                }
                FaultEvent::Process(process::Applied::Added { node }) => {
                    lanes.tick(plot, *node, t, "tick config", "added to the cluster")
                }
                FaultEvent::Process(process::Applied::LostUnsynced { node, .. }) => {
                    lanes.tick(plot, *node, t, "tick crash", &f.to_string())
                }
                FaultEvent::Network(a) => match a {
                    network::Applied::Partitioned { sides } => {
                        lanes.close_cut(plot, &mut st, t);
                        st.cut = Some((t, sides.clone(), None));
                    }
                    network::Applied::Isolated { node, .. } => {
                        lanes.close_cut(plot, &mut st, t);
                        let rest = nodes.iter().copied().filter(|n| n != node).collect();
                        st.cut = Some((t, vec![vec![*node], rest], Some(*node)));
                    }
                    network::Applied::Healed => lanes.close_cut(plot, &mut st, t),
                    network::Applied::Clogged { from, to } => {
                        st.clogs.entry((*from, *to)).or_insert(t);
                    }
                    network::Applied::Unclogged { from, to } => {
                        if let (Some(since), Some(&top)) = (st.clogs.remove(&(*from, *to)), lanes.top.get(from)) {
                            if plot.allow(&mut lanes.bands) {
                                let title = format!("clog n{from}->n{to}, {}–{}", secs(since), secs(t));
                                plot.rect(1, (since, t), (top + height - 3, 3), "clog", &title);
                            }
                        }
                    }
                },
                FaultEvent::Clock(a) => {
                    let clock::Applied::Skewed { node, .. } = a;
                    lanes.tick(plot, *node, t, "tick skew", &a.to_string());
                }
                FaultEvent::Disk(a) => {
                    let (disk::Applied::Injected { node }
                    | disk::Applied::ReadInjected { node }
                    | disk::Applied::Corrupted { node, .. }
                    | disk::Applied::Slowed { node, .. }) = a;
                    lanes.tick(plot, *node, t, "tick poison", &a.to_string());
                }
                FaultEvent::Link(_) | FaultEvent::Operator(_) | FaultEvent::Skipped { .. } => {}
            },
            TraceKind::Phase(_) => {}
        }
    }
    let end = plot.end_ns;
    for (g, lead) in std::mem::take(&mut st.leader) {
        lanes.close_leader(plot, g, lead, end, "until the end of the run");
    }
    for n in nodes {
        lanes.close_state(plot, &mut st.down, n, end, "down");
        lanes.close_state(plot, &mut st.poisoned, n, end, "poisoned");
    }
    lanes.close_cut(plot, &mut st, end);
}
