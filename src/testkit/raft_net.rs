//! One in-memory driver for Raft cores: the core's unit tests and the `raft_core` bench
//! run replicas on it. Messages are handed over directly and in order, except on links
//! in `cut`; storage effects count as durable at once (recorded in `seen`, with every
//! other effect that is not a send). One clock drives every node, each reading it at its
//! own rate. A node applies what commits at once; its state machine is the bytes in
//! `state`, which a snapshot carries (in chunks of the leader's
//! `snapshot_chunk_bytes_max`) to a follower that installs it. (The fuzz harness, `raft_cluster.rs`, models disks, crashes and adversarial
//! delivery order instead: a different driver for a different job.)
//!
//! ```text
//!   fire(id) / advance(ms) ─▶ Tick at deadlines ─▶ deliver(): drain every node's effects,
//!                                                   hand each Send to its target, repeat
//!                                                   until nothing is in flight
//! ```

use crate::raft::{Effect, Input, Raft, SnapshotChunk, SnapshotMeta, Term};
use crate::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Rounds of delivery before `deliver` declares a livelock.
const ROUNDS_MAX: usize = 10_000;

pub struct RaftNet {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub now_ms: u64,
    /// Links `(from, to)` whose messages are dropped.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Every effect other than a send, by node, in order (unless `record` is off).
    pub seen: Vec<(NodeId, Effect)>,
    /// Whether `seen` records (a bench turns it off).
    pub record: bool,
    /// Clock rates in millionths of true time (absent: a true clock). A node's clock
    /// reads `now_ms · rate`; set rates before time passes.
    pub rate_ppm: BTreeMap<NodeId, u64>,
    /// Each node's state machine (absent: empty).
    pub state: BTreeMap<NodeId, Vec<u8>>,
    /// The chunks of a snapshot a node is receiving.
    incoming: BTreeMap<NodeId, Vec<u8>>,
}

impl RaftNet {
    pub fn from_replicas(replicas: impl IntoIterator<Item = Raft>) -> Self {
        RaftNet {
            nodes: replicas.into_iter().map(|r| (r.id(), r)).collect(),
            now_ms: 0,
            cut: BTreeSet::new(),
            seen: Vec::new(),
            record: true,
            rate_ppm: BTreeMap::new(),
            state: BTreeMap::new(),
            incoming: BTreeMap::new(),
        }
    }

    /// Node `id`'s clock reading now.
    pub fn local(&self, id: NodeId) -> u64 {
        self.now_ms * self.rate_ppm.get(&id).copied().unwrap_or(1_000_000) / 1_000_000
    }

    /// When (in true time) node `id`'s next deadline comes.
    fn deadline(&self, id: NodeId) -> u64 {
        let rate = self.rate_ppm.get(&id).copied().unwrap_or(1_000_000);
        (self.nodes[&id].next_deadline_ms() * 1_000_000).div_ceil(rate)
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: NodeId) {
        for &other in self.nodes.keys() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Delivers until nothing is in flight.
    pub fn deliver(&mut self) {
        for _ in 0..ROUNDS_MAX {
            let mut queue = Vec::new();
            let mut stepped = false;
            for (&id, r) in self.nodes.iter_mut() {
                for e in r.drain_effects() {
                    match &e {
                        Effect::Send { envelope, .. } => {
                            queue.push(envelope.clone());
                            continue;
                        }
                        Effect::Commit { index } => r.advance_applied(*index),
                        Effect::ReadSnapshotChunk { to, chunk, .. } => {
                            let state = self.state.get(&id).map_or(&[][..], Vec::as_slice);
                            let size = r.config().snapshot_chunk_bytes_max;
                            let start = (*chunk as usize * size).min(state.len());
                            let end = (start + size).min(state.len());
                            let index = r.applied_index();
                            let term = r.term_at(index).expect("the applied index is in the log or its start");
                            let read = SnapshotChunk {
                                to: *to,
                                meta: SnapshotMeta { index, term },
                                membership: r.membership_at(index),
                                chunk: *chunk,
                                data: state[start..end].to_vec(),
                                done: end == state.len(),
                            };
                            let local = self.now_ms * self.rate_ppm.get(&id).copied().unwrap_or(1_000_000) / 1_000_000;
                            r.step(local, Input::SnapshotChunk(read));
                            stepped = true;
                        }
                        Effect::SnapshotChunk { chunk, data, .. } => {
                            let incoming = self.incoming.entry(id).or_default();
                            if *chunk == 0 {
                                incoming.clear();
                            }
                            incoming.extend_from_slice(data);
                        }
                        Effect::InstallSnapshot { .. } => {
                            self.state.insert(id, self.incoming.remove(&id).unwrap_or_default());
                        }
                        _ => {}
                    }
                    if self.record {
                        self.seen.push((id, e));
                    }
                }
            }
            if queue.is_empty() && !stepped {
                return;
            }
            for env in queue {
                if !self.cut.contains(&(env.from, env.to)) {
                    let now = self.local(env.to);
                    if let Some(r) = self.nodes.get_mut(&env.to) {
                        r.step(now, Input::Receive(env));
                    }
                }
            }
        }
        panic!("the network did not quiesce");
    }

    /// Fires node `id`'s next deadline (moving the clock there), then delivers.
    pub fn fire(&mut self, id: NodeId) {
        self.now_ms = self.now_ms.max(self.deadline(id));
        let now = self.local(id);
        self.nodes.get_mut(&id).expect("a node of the net").step(now, Input::Tick);
        self.deliver();
    }

    /// Lets `ms` pass, every node ticking at its deadlines, messages delivered at once.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        loop {
            let next = self.nodes.keys().map(|&id| self.deadline(id)).min().expect("a net has nodes");
            if next > end {
                break;
            }
            self.now_ms = self.now_ms.max(next);
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let now = self.local(id);
                let r = self.nodes.get_mut(&id).expect("listed");
                if r.next_deadline_ms() <= now {
                    r.step(now, Input::Tick);
                }
            }
            self.deliver();
        }
        self.now_ms = end;
    }

    pub fn get(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }

    pub fn get_mut(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("a node of the net")
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes.values().filter(|r| r.is_leader()).map(Raft::id).collect()
    }

    pub fn terms(&self) -> Vec<Term> {
        self.nodes.values().map(Raft::term).collect()
    }

    /// The terms of node `id`'s log entries, in order (the entries it still holds).
    pub fn log_terms(&self, id: NodeId) -> Vec<Term> {
        let r = &self.nodes[&id];
        (r.snapshot_meta().index + 1..=r.last_index()).map(|i| r.entry(i).expect("in the log").term).collect()
    }
}
