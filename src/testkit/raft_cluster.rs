//! An in-memory cluster of real Raft cores driven by an arbitrary sequence of events,
//! checking Raft's safety properties (Figure 3) after every one of them.
//!
//! ```text
//!   Event::{Tick, Deliver, Drop, Duplicate, Propose, Crash, Restart}
//!      │
//!      ▼
//!   cores ──effects──▶ disks (durable + unsynced writes; a Send after Synced syncs first)
//!      ▲                network (bounded queue; any message can be delivered, dropped,
//!      └──────────────  duplicated, in any order)
//! ```
//!
//! A crash keeps each disk's synced state plus a prefix (chosen by the input) of its
//! unsynced writes, exactly the contract of `io::Storage`; a restart rebuilds the core
//! from it. Checked after every event: election safety, log matching, commit monotonicity
//! (per incarnation), state machine safety (committed entries never change).

use crate::raft::{
    Config, Durability, Effect, Entry, Envelope, HardState, Index, Input, Membership, PlantedBug, Raft, SnapshotChunk,
    SnapshotMeta, Term,
};
use crate::NodeId;
use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeMap;

/// Messages in flight before new ones are dropped.
const NETWORK_MESSAGES_MAX: usize = 512;
/// The planted bugs this harness can reach. It changes no configurations, so
/// `SnapshotStaleConfig` is the simulator's to find (`scenarios/bugs/`).
pub const REACHABLE: [PlantedBug; 4] = [
    PlantedBug::QuorumOffByOne,
    PlantedBug::VoteIgnoresLog,
    PlantedBug::VoteNotPersisted,
    PlantedBug::ReadIndexWithoutQuorum,
];

/// Events one run may take.
pub const EVENTS_MAX: usize = 2_000;

#[derive(Debug, Clone, Arbitrary)]
pub enum Event {
    /// Time passes for everyone; one node's deadlines fire.
    Tick {
        node: u8,
        advance_ms: u16,
    },
    Deliver {
        message: u16,
    },
    Drop {
        message: u16,
    },
    Duplicate {
        message: u16,
    },
    Propose {
        node: u8,
        value: u8,
    },
    /// The node dies; of its unsynced writes, the first `keep` (modulo their count) survive.
    Crash {
        node: u8,
        keep: u8,
    },
    Restart {
        node: u8,
    },
    /// A ReadIndex read at the node (refused unless it leads).
    Read {
        node: u8,
    },
    /// The node snapshots its state machine at its commit index and compacts its log,
    /// as the node runtime does (durably, before dropping entries).
    Compact {
        node: u8,
    },
}

#[derive(Default)]
struct Disk {
    hard: HardState,
    /// Where the log was cut, and the configuration then. The harness's state machine is
    /// its applied index, persisted with the cut.
    snapshot: Option<(SnapshotMeta, Membership)>,
    /// The entries after the snapshot.
    log: Vec<Entry>,
    unsynced: Vec<Effect>,
}

impl Disk {
    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::PersistHardState(hs) => self.hard = *hs,
            Effect::TruncateLog { from, .. } => self.log.retain(|e| e.index < *from),
            Effect::AppendLog(entries) => {
                for e in entries {
                    let last = self.log.last().map_or(self.snapshot.as_ref().map_or(0, |(m, _)| m.index), |l| l.index);
                    assert_eq!(e.index, last + 1, "appends are contiguous on disk");
                    self.log.push(e.clone());
                }
            }
            Effect::InstallSnapshot { meta, membership, discard } => {
                self.snapshot = Some((*meta, membership.clone()));
                let (from, to) = discard.unwrap_or((1, 0));
                self.log.retain(|e| e.index > meta.index && !(from..=to).contains(&e.index));
            }
            _ => {}
        }
    }
    fn sync(&mut self) {
        for e in std::mem::take(&mut self.unsynced) {
            self.apply(&e);
        }
    }
}

struct Slot {
    raft: Option<Raft>,
    disk: Disk,
    incarnation: u64,
    last_commit: Index,
}

pub struct Cluster {
    ids: Vec<NodeId>,
    slots: BTreeMap<NodeId, Slot>,
    network: Vec<Envelope>,
    now_ms: u64,
    planted_bug: Option<PlantedBug>,
    /// Pre-vote and check-quorum, as the input chose.
    pre_vote: bool,
    check_quorum: bool,
    /// Every leader ever elected, by term (election safety).
    leaders: BTreeMap<Term, NodeId>,
    /// Reads in flight: (node, read id) to the highest index committed anywhere when the
    /// read began. A linearizable read must be served at or after it.
    reads: BTreeMap<(NodeId, u64), Index>,
    next_read_id: u64,
    /// Every entry ever committed, by index (state machine safety).
    committed: BTreeMap<Index, Entry>,
}

impl Cluster {
    /// `nodes` replicas with pre-vote and check-quorum on (the defaults).
    pub fn new(nodes: usize, planted_bug: Option<PlantedBug>) -> Self {
        Self::with_options(nodes, planted_bug, true, true)
    }

    pub fn with_options(nodes: usize, planted_bug: Option<PlantedBug>, pre_vote: bool, check_quorum: bool) -> Self {
        let ids: Vec<NodeId> = (1..=nodes as NodeId).collect();
        let mut c = Cluster {
            ids: ids.clone(),
            slots: BTreeMap::new(),
            network: Vec::new(),
            now_ms: 0,
            planted_bug,
            pre_vote,
            check_quorum,
            reads: BTreeMap::new(),
            next_read_id: 0,
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
        };
        for id in ids {
            c.slots.insert(id, Slot { raft: None, disk: Disk::default(), incarnation: 0, last_commit: 0 });
            c.start(id);
        }
        c
    }

    fn config(&self, id: NodeId) -> Config {
        let mut cfg = Config::new(id, 1, self.ids.clone());
        cfg.election_timeout_ms_min = 100;
        cfg.election_timeout_ms_max = 200;
        cfg.heartbeat_interval_ms = 20;
        cfg.append_entries_max = 4;
        cfg.uncommitted_entries_max = 64;
        cfg.pre_vote = self.pre_vote;
        cfg.check_quorum = self.check_quorum;
        cfg.planted_bug = self.planted_bug;
        cfg
    }

    fn start(&mut self, id: NodeId) {
        let cfg = self.config(id);
        let now = self.now_ms;
        let slot = self.slots.get_mut(&id).expect("known node");
        slot.incarnation += 1;
        slot.last_commit = 0;
        let seed = id * 1_000_003 + slot.incarnation;
        let applied = slot.disk.snapshot.as_ref().map_or(0, |(m, _)| m.index);
        let raft = Raft::with_snapshot(
            cfg,
            seed,
            now,
            slot.disk.hard,
            slot.disk.snapshot.clone(),
            slot.disk.log.clone(),
            applied,
        )
        .unwrap_or_else(|e| panic!("node {id} cannot recover from what it persisted: {e}"));
        slot.raft = Some(raft);
    }

    fn node(&self, n: u8) -> NodeId {
        self.ids[n as usize % self.ids.len()]
    }

    /// Applies one event, then checks every invariant.
    pub fn step(&mut self, event: &Event) {
        match *event {
            Event::Tick { node, advance_ms } => {
                self.now_ms += u64::from(advance_ms);
                let id = self.node(node);
                let now = self.now_ms;
                if let Some(r) = self.slots.get_mut(&id).and_then(|s| s.raft.as_mut()) {
                    r.step(now, Input::Tick);
                }
                self.drain(id);
            }
            Event::Deliver { message } => {
                if !self.network.is_empty() {
                    let env = self.network.remove(message as usize % self.network.len());
                    let to = env.to;
                    let now = self.now_ms;
                    if let Some(r) = self.slots.get_mut(&to).and_then(|s| s.raft.as_mut()) {
                        r.step(now, Input::Receive(env));
                    }
                    self.drain(to);
                }
            }
            Event::Drop { message } => {
                if !self.network.is_empty() {
                    self.network.remove(message as usize % self.network.len());
                }
            }
            Event::Duplicate { message } => {
                if !self.network.is_empty() && self.network.len() < NETWORK_MESSAGES_MAX {
                    let env = self.network[message as usize % self.network.len()].clone();
                    self.network.push(env);
                }
            }
            Event::Propose { node, value } => {
                let id = self.node(node);
                if let Some(r) = self.slots.get_mut(&id).and_then(|s| s.raft.as_mut()) {
                    let _ = r.propose(vec![value]);
                }
                self.drain(id);
            }
            Event::Crash { node, keep } => {
                let id = self.node(node);
                // Its reads die with it.
                self.reads.retain(|&(n, _), _| n != id);
                let slot = self.slots.get_mut(&id).expect("known node");
                if slot.raft.take().is_some() {
                    let unsynced = std::mem::take(&mut slot.disk.unsynced);
                    let keep = keep as usize % (unsynced.len() + 1);
                    for e in &unsynced[..keep] {
                        slot.disk.apply(e);
                    }
                }
            }
            Event::Read { node } => {
                let id = self.node(node);
                self.next_read_id += 1;
                let read_id = self.next_read_id;
                let floor = self.committed.keys().next_back().copied().unwrap_or(0);
                let now = self.now_ms;
                if let Some(r) = self.slots.get_mut(&id).and_then(|s| s.raft.as_mut()) {
                    if r.read_index(now, read_id).is_ok() {
                        self.reads.insert((id, read_id), floor);
                    }
                }
                self.drain(id);
            }
            Event::Compact { node } => {
                let id = self.node(node);
                let slot = self.slots.get_mut(&id).expect("known node");
                if let Some(r) = slot.raft.as_mut() {
                    let index = r.commit_index();
                    if index > r.snapshot_meta().index {
                        let term = r.entry(index).expect("committed past the snapshot: in the log").term;
                        let meta = SnapshotMeta { index, term };
                        // Durable first, then the entries go.
                        slot.disk.sync();
                        slot.disk.snapshot = Some((meta, r.membership_at(index)));
                        slot.disk.log.retain(|e| e.index > index);
                        r.compact(index);
                    }
                }
                self.drain(id);
            }
            Event::Restart { node } => {
                let id = self.node(node);
                if self.slots[&id].raft.is_none() {
                    self.start(id);
                }
            }
        }
        self.check();
    }

    /// Carries out a node's effects the way the node runtime does: writes queue up
    /// unsynced; a message that needs durability syncs them first.
    fn drain(&mut self, id: NodeId) {
        let Some(slot) = self.slots.get_mut(&id) else { return };
        let Some(raft) = slot.raft.as_mut() else { return };
        // Reading a snapshot chunk steps the core again: drain until it is quiet.
        let mut effects = raft.drain_effects();
        while !effects.is_empty() {
            for effect in std::mem::take(&mut effects) {
                match effect {
                    Effect::PersistHardState(_)
                    | Effect::TruncateLog { .. }
                    | Effect::AppendLog(_)
                    | Effect::InstallSnapshot { .. } => slot.disk.unsynced.push(effect),
                    // The state machine is the applied index: one chunk holds it.
                    Effect::ReadSnapshotChunk { to, .. } => {
                        let index = raft.applied_index();
                        let term = raft.entry(index).map_or_else(|| raft.snapshot_meta().term, |e| e.term);
                        let chunk = SnapshotChunk {
                            to,
                            meta: SnapshotMeta { index, term },
                            membership: raft.membership_at(index),
                            chunk: 0,
                            data: index.to_le_bytes().to_vec(),
                            done: true,
                        };
                        raft.step(self.now_ms, Input::SnapshotChunk(chunk));
                    }
                    Effect::SnapshotChunk { meta, data, .. } => {
                        assert_eq!(data, meta.index.to_le_bytes(), "a snapshot holds its own index");
                    }
                    Effect::Send { envelope, after } => {
                        if after == Durability::Synced {
                            slot.disk.sync();
                        }
                        if self.network.len() < NETWORK_MESSAGES_MAX {
                            self.network.push(envelope);
                        }
                    }
                    Effect::Commit { index } => raft.advance_applied(index),

                    Effect::ReadReady { id: read_id, index } => {
                        let floor = self.reads.remove(&(id, read_id)).expect("a read the harness started");
                        assert!(
                        index >= floor,
                        "stale read: node {id} serves read {read_id} at index {index}, but {floor} was committed before it began"
                    );
                    }
                    Effect::ReadFailed { id: read_id } => {
                        self.reads.remove(&(id, read_id)).expect("a read the harness started");
                    }
                    Effect::BecameLeader { term } => {
                        if let Some(&other) = self.leaders.get(&term) {
                            assert_eq!(other, id, "election safety: term {term} has leaders {other} and {id}");
                        }
                        self.leaders.insert(term, id);
                    }
                }
            }
            effects = raft.drain_effects();
        }
    }

    fn check(&mut self) {
        let live: Vec<(NodeId, &Raft)> =
            self.slots.iter().filter_map(|(&id, s)| s.raft.as_ref().map(|r| (id, r))).collect();
        // Log matching (Figure 3): an entry with the same index and term is the same entry,
        // and so are all entries before it.
        for (i, &(a, ra)) in live.iter().enumerate() {
            for &(b, rb) in &live[i + 1..] {
                let last = ra.last_index().min(rb.last_index());
                // Below either snapshot, entries are gone (committed, checked below).
                let first = ra.snapshot_meta().index.max(rb.snapshot_meta().index) + 1;
                let mut matched = false;
                for index in (first..=last).rev() {
                    let (ea, eb) = (ra.entry(index).expect("in log"), rb.entry(index).expect("in log"));
                    if matched {
                        assert_eq!(ea, eb, "log matching: nodes {a} and {b} differ at {index} below a match");
                    } else if ea.term == eb.term {
                        assert_eq!(
                            ea, eb,
                            "log matching: nodes {a} and {b} hold different entries ({index}, {})",
                            ea.term
                        );
                        matched = true;
                    }
                }
            }
        }
        // Commit monotonicity and state machine safety.
        for (&id, slot) in self.slots.iter_mut() {
            let Some(r) = slot.raft.as_ref() else { continue };
            let commit = r.commit_index();
            assert!(
                commit >= slot.last_commit,
                "commit index of node {id} went back from {} to {commit}",
                slot.last_commit
            );
            let snapshot = r.snapshot_meta();
            // Snapshot/log agreement: a snapshot ends where the committed log has that term.
            if let Some(e) = self.committed.get(&snapshot.index) {
                assert_eq!(e.term, snapshot.term, "node {id}'s snapshot at {} disagrees with the log", snapshot.index);
            }
            for index in slot.last_commit + 1..=commit {
                let Some(entry) = r.entry(index).cloned() else {
                    assert!(
                        index <= snapshot.index,
                        "committed entry {index} of node {id} is neither in its log nor its snapshot"
                    );
                    continue;
                };
                match self.committed.get(&index) {
                    Some(e) => {
                        assert_eq!(e, &entry, "state machine safety: node {id} commits a different entry at {index}")
                    }
                    None => {
                        self.committed.insert(index, entry);
                    }
                }
            }
            slot.last_commit = commit;
        }
    }

    pub fn committed(&self) -> usize {
        self.committed.len()
    }
}

/// Runs a whole fuzz input: the first byte picks 3 to 5 nodes, the second whether
/// pre-vote and check-quorum are on, the rest are events.
pub fn run(data: &[u8], planted_bug: Option<PlantedBug>) {
    let mut u = Unstructured::new(data);
    let nodes = 3 + u.int_in_range(0..=2u8).unwrap_or(0) as usize;
    let features = u.int_in_range(0..=3u8).unwrap_or(0);
    let mut cluster = Cluster::with_options(nodes, planted_bug, features & 1 == 1, features & 2 == 2);
    for _ in 0..EVENTS_MAX {
        // `arbitrary` goes on producing defaults from an exhausted input: stop there.
        if u.is_empty() {
            break;
        }
        let Ok(event) = Event::arbitrary(&mut u) else { break };
        cluster.step(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fair schedule (tick everyone, deliver everything) elects a leader and commits.
    #[test]
    fn a_fair_schedule_makes_progress() {
        let mut c = Cluster::new(3, None);
        for round in 0..200u16 {
            for n in 0..3 {
                c.step(&Event::Tick { node: n, advance_ms: 10 });
            }
            if round % 5 == 0 {
                c.step(&Event::Propose { node: (round % 3) as u8, value: round as u8 });
            }
            while !c.network.is_empty() {
                c.step(&Event::Deliver { message: 0 });
            }
        }
        assert!(c.committed() > 10, "committed {}", c.committed());
    }

    /// A leader commits alone (the planted quorum bug), crashes, and the others elect a
    /// leader that writes a different entry at the committed index.
    fn lonely_commit_then_takeover(bug: Option<PlantedBug>) {
        let mut c = Cluster::new(3, bug);
        let deliver_all = |c: &mut Cluster| {
            while !c.network.is_empty() {
                c.step(&Event::Deliver { message: 0 });
            }
        };
        c.step(&Event::Tick { node: 0, advance_ms: 250 });
        deliver_all(&mut c);
        c.step(&Event::Propose { node: 0, value: 7 });
        c.step(&Event::Drop { message: 0 });
        c.step(&Event::Drop { message: 0 });
        c.step(&Event::Crash { node: 0, keep: 0 });
        c.step(&Event::Tick { node: 1, advance_ms: 250 });
        deliver_all(&mut c);
        c.step(&Event::Propose { node: 1, value: 9 });
        deliver_all(&mut c);
    }

    #[cfg(feature = "planted-bugs")]
    #[test]
    fn the_harness_catches_a_planted_quorum_bug_and_passes_without_it() {
        assert!(std::panic::catch_unwind(|| lonely_commit_then_takeover(None)).is_ok());
        let caught = std::panic::catch_unwind(|| lonely_commit_then_takeover(Some(PlantedBug::QuorumOffByOne)));
        assert!(caught.is_err(), "the planted bug must be caught");
    }
}
