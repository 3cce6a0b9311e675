//! Faults at moments, not only at times: a fault that fires when a node event happens
//! (`on = "leader_elected"`), a seeded delay after it, on the node it happened on
//! (`node = "that"`) or another one (`node = "other"`), and is undone after
//! `undo_after_ms` if given. Uniform timed faults almost never land in the narrow windows
//! where bugs live (a crash right after an election; a crash inside the sync of an entry a
//! follower has just appended); a trigger aims at them.
//!
//! ```text
//!   scenario: [[faults]] on = "...", delay_ms, times, undo_after_ms   (explicit)
//!             [nemesis] triggers = [lo, hi]                            (drawn per seed)
//!        ─▶ Trigger { on, from_ms, delay_ms, times, undo_after_ms, action }
//!   run:     node event ─▶ Triggers::observe: armed, matching, not used up?
//!        ─▶ due at now + delay (seeded) ─▶ the world applies it, "that" = the event's node
//!        ─▶ its undo, if any, due undo_after_ms later on the same node
//! ```
//!
//! Contract: which triggers fire, when, and on which node is a function of the seed and the
//! run's events, so a run stays reproducible; triggers fire only in the faulty phase, at
//! most `times` each, and the queue of due faults is bounded (`PENDING_MAX`).

use super::{disk, link, network, process, Action, FaultKind, Target};
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most times one trigger may fire.
pub const TIMES_MAX: u32 = 1_000;
/// The longest delay or undo a trigger may ask for.
pub const DELAY_MS_MAX: u64 = 60_000;
/// Due faults waiting to fire; a trigger that fires beyond it is dropped (and counted).
const PENDING_MAX: usize = 1_024;

/// The node events a trigger can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    LeaderElected,
    EntryAppended,
    EntryCommitted,
    EntryApplied,
    ConfigAppended,
    LogTruncated,
    SnapshotTaken,
    SnapshotInstalled,
    Recovered,
    LeaseRead,
    /// A new leader's first commit: where it commits what it inherited from earlier terms
    /// (with its own no-op, Raft §5.4.2), the moment a crash tests that those entries
    /// really are on a majority. Derived (`Triggers` tracks elections): the first
    /// `Committed` of a node after its `BecameLeader`, unless a higher term was won since.
    LeaderFirstCommit,
    /// A node dropped its data as corrupt at restart (`NodeEvent::DataDropped`): the
    /// window before its rebuild completes.
    DataDropped,
}

impl Moment {
    /// The moment `event` is, if a trigger can wait for it.
    pub fn of(event: &NodeEvent) -> Option<Moment> {
        Some(match event {
            NodeEvent::BecameLeader { .. } => Moment::LeaderElected,
            NodeEvent::Appended { .. } => Moment::EntryAppended,
            NodeEvent::Committed { .. } => Moment::EntryCommitted,
            NodeEvent::Applied { .. } => Moment::EntryApplied,
            NodeEvent::ConfigAppended { .. } => Moment::ConfigAppended,
            NodeEvent::Truncated { .. } => Moment::LogTruncated,
            NodeEvent::Compacted { .. } => Moment::SnapshotTaken,
            NodeEvent::SnapshotInstalled { .. } => Moment::SnapshotInstalled,
            NodeEvent::Recovered { .. } => Moment::Recovered,
            NodeEvent::LeaseRead { .. } => Moment::LeaseRead,
            NodeEvent::DataDropped { .. } => Moment::DataDropped,
            NodeEvent::ClockDriftExceeded { .. }
            | NodeEvent::Poisoned { .. }
            | NodeEvent::RangeSplit { .. }
            | NodeEvent::RangeInstalled { .. }
            | NodeEvent::RangeReplicas { .. }
            | NodeEvent::ReplicaCollected { .. }
            | NodeEvent::DirectoryTiled { .. } => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Moment::LeaderElected => "leader_elected",
            Moment::EntryAppended => "entry_appended",
            Moment::EntryCommitted => "entry_committed",
            Moment::EntryApplied => "entry_applied",
            Moment::ConfigAppended => "config_appended",
            Moment::LogTruncated => "log_truncated",
            Moment::SnapshotTaken => "snapshot_taken",
            Moment::SnapshotInstalled => "snapshot_installed",
            Moment::Recovered => "recovered",
            Moment::LeaseRead => "lease_read",
            Moment::LeaderFirstCommit => "leader_first_commit",
            Moment::DataDropped => "data_dropped",
        }
    }
}

/// A resolved trigger: armed from `from_ms` until the heal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    pub on: Moment,
    pub from_ms: u64,
    pub delay_ms: [u64; 2],
    pub times: u32,
    pub undo_after_ms: Option<[u64; 2]>,
    pub action: Action,
    /// Where it came from: "file" or "nemesis".
    pub origin: String,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [lo, hi] = self.delay_ms;
        write!(f, "on {} from {:.3}s: {} within {lo}..{hi}ms", self.on.name(), self.from_ms as f64 / 1e3, self.action)?;
        if self.times > 1 {
            write!(f, ", up to {} times", self.times)?;
        }
        if let Some([lo, hi]) = self.undo_after_ms {
            write!(f, ", undone after {lo}..{hi}ms")?;
        }
        Ok(())
    }
}

impl Action {
    /// What undoes this fault, if anything does (operator requests and undos have none).
    pub fn undo(&self) -> Option<Action> {
        Some(match self {
            Action::Process(process::Action::Crash { node }) => process::Action::Restart { node: *node }.into(),
            Action::Network(network::Action::Isolate { .. } | network::Action::Partition { .. }) => {
                network::Action::Heal.into()
            }
            Action::Network(network::Action::Clog { from, to }) => {
                network::Action::Unclog { from: *from, to: *to }.into()
            }
            Action::Disk(
                disk::Action::DiskError { node } | disk::Action::ReadError { node } | disk::Action::Corrupt { node },
            ) => process::Action::Restart { node: *node }.into(),
            Action::Disk(disk::Action::SlowDisk { node, sync_ms: Some(_) }) => {
                disk::Action::SlowDisk { node: *node, sync_ms: None }.into()
            }
            Action::Clock(super::clock::Action::ClockSkew { node, .. }) => {
                super::clock::Action::ClockSkew { node: *node, offset_ms: 0, drift_ppm: 0 }.into()
            }
            Action::Link(link::Action::Loss { rate: Some(_) }) => link::Action::Loss { rate: None }.into(),
            Action::Link(link::Action::Duplicate { rate: Some(_) }) => link::Action::Duplicate { rate: None }.into(),
            Action::Link(link::Action::Latency { ms: Some(_) }) => link::Action::Latency { ms: None }.into(),
            _ => return None,
        })
    }
}

/// The triggers the nemesis draws, `count` of them, on a stream of their own (so timed
/// draws stay as they were): aimed at the windows uniform faults miss, among the kinds
/// the nemesis may use.
pub fn draw(count: u64, kinds: &[FaultKind], faulty_ms: u64, seed: u64) -> Vec<Trigger> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5452_4947_4745_5253);
    // (moment, kind, delay, undo after): a crash or an isolation right after an election,
    // a crash right after a new leader's first commit (before its no-op spreads further),
    // a crash inside the sync that follows an append, a crash while a snapshot lands.
    let menu: [(Moment, FaultKind, [u64; 2], [u64; 2]); 6] = [
        (Moment::LeaderElected, FaultKind::Crash, [0, 5], [100, 2_000]),
        (Moment::LeaderFirstCommit, FaultKind::Crash, [0, 2], [100, 2_000]),
        (Moment::LeaderElected, FaultKind::Isolate, [0, 5], [100, 2_000]),
        (Moment::EntryAppended, FaultKind::Crash, [0, 3], [50, 1_000]),
        (Moment::ConfigAppended, FaultKind::Crash, [0, 5], [100, 2_000]),
        (Moment::SnapshotInstalled, FaultKind::Crash, [0, 5], [100, 2_000]),
    ];
    let usable: Vec<_> = menu.iter().filter(|(_, k, _, _)| kinds.contains(k)).collect();
    let mut out = Vec::new();
    for _ in 0..count {
        let Some(&&(on, kind, delay_ms, undo)) = usable.choose(&mut rng) else { break };
        let node = Target::That;
        let action = match kind {
            FaultKind::Isolate => network::Action::Isolate { node }.into(),
            _ => process::Action::Crash { node }.into(),
        };
        let lo = rng.gen_range(undo[0]..=undo[1]);
        out.push(Trigger {
            on,
            from_ms: rng.gen_range(0..=faulty_ms / 2),
            delay_ms,
            // Now and then many times: a window that needs two aimed faults in a row (an
            // orphaned no-op, then a crash right after a later leader's first commit:
            // Raft's Figure 8) is reached when both fire often.
            times: *[1, 2, 3, 10, 30].choose(&mut rng).expect("non-empty"),
            undo_after_ms: Some([lo, lo + (undo[1] - undo[0]) / 4]),
            action,
            origin: "nemesis".into(),
        });
    }
    out
}

/// A fault a trigger made due: `that` is the node the event happened on.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub action: Action,
    pub that: NodeId,
    pub undo_after_ms: Option<[u64; 2]>,
}

/// The triggers of a run as node events arrive.
#[derive(Debug, Default)]
pub struct Triggers {
    armed: Vec<(Trigger, u32)>,
    /// Due faults by (due time in ns, arrival order).
    pending: BTreeMap<(u64, u64), Due>,
    arrivals: u64,
    /// Triggers that fired while the queue was full.
    dropped: u64,
    rng: Option<ChaCha8Rng>,
    /// The faulty phase ended: nothing fires any more.
    closed: bool,
    /// Leaders that have not committed since their election: (group, node) -> term won.
    new_leaders: BTreeMap<(GroupId, NodeId), u64>,
}

impl Triggers {
    pub fn new(triggers: &[Trigger], seed: u64) -> Self {
        Triggers {
            armed: triggers.iter().map(|t| (t.clone(), 0)).collect(),
            rng: Some(ChaCha8Rng::seed_from_u64(seed ^ 0x4649_5245_5449_4d45)),
            ..Triggers::default()
        }
    }

    /// A node event at `t_ns`: every armed trigger waiting for it fires (once more).
    pub fn observe(&mut self, t_ns: u64, node: NodeId, group: GroupId, event: &NodeEvent) {
        if self.closed {
            return;
        }
        let Some(moment) = Moment::of(event) else { return };
        let derived = match event {
            NodeEvent::BecameLeader { term } => {
                // A higher term of the group won: its earlier leaders lead no more.
                self.new_leaders.retain(|&(g, _), t| g != group || *t >= *term);
                self.new_leaders.insert((group, node), *term);
                None
            }
            NodeEvent::Recovered { .. } => {
                self.new_leaders.remove(&(group, node));
                None
            }
            NodeEvent::Committed { .. } => self.new_leaders.remove(&(group, node)).map(|_| Moment::LeaderFirstCommit),
            _ => None,
        };
        let rng = self.rng.as_mut().expect("built by new");
        for (t, fired) in &mut self.armed {
            let now = t.on == moment || Some(t.on) == derived;
            if !now || *fired >= t.times || t_ns < t.from_ms * 1_000_000 {
                continue;
            }
            *fired += 1;
            let delay_ns = rng.gen_range(t.delay_ms[0]..=t.delay_ms[1]) * 1_000_000;
            if self.pending.len() >= PENDING_MAX {
                self.dropped += 1;
                continue;
            }
            self.arrivals += 1;
            let due = Due { action: t.action.clone(), that: node, undo_after_ms: t.undo_after_ms };
            self.pending.insert((t_ns + delay_ns, self.arrivals), due);
        }
    }

    /// When the next due fault fires, if one is waiting.
    pub fn next_due_ns(&self) -> Option<u64> {
        self.pending.keys().next().map(|&(t, _)| t)
    }

    /// Takes the faults due at or before `now_ns`, in order.
    pub fn take_due(&mut self, now_ns: u64) -> Vec<Due> {
        let later = match now_ns.checked_add(1) {
            Some(after) => self.pending.split_off(&(after, 0)),
            None => BTreeMap::new(),
        };
        std::mem::replace(&mut self.pending, later).into_values().collect()
    }

    /// A fired fault's undo, due `undo_after_ms` (seeded) after `now_ns`.
    pub fn schedule_undo(&mut self, now_ns: u64, due: &Due) {
        let (Some([lo, hi]), Some(undo)) = (due.undo_after_ms, due.action.undo()) else { return };
        if self.pending.len() >= PENDING_MAX {
            self.dropped += 1;
            return;
        }
        let after_ns = self.rng.as_mut().expect("built by new").gen_range(lo..=hi) * 1_000_000;
        self.arrivals += 1;
        let undo = Due { action: undo, that: due.that, undo_after_ms: None };
        self.pending.insert((now_ns + after_ns, self.arrivals), undo);
    }

    /// The faulty phase is over: what is still due is dropped (the heal undoes all).
    pub fn close(&mut self) {
        self.closed = true;
        self.pending.clear();
    }

    /// How many times each trigger fired, and how many firings the bound dropped.
    pub fn fired(&self) -> (Vec<u32>, u64) {
        (self.armed.iter().map(|(_, n)| *n).collect(), self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash_that_after_election(times: u32, from_ms: u64) -> Trigger {
        Trigger {
            on: Moment::LeaderElected,
            from_ms,
            delay_ms: [0, 5],
            times,
            undo_after_ms: Some([100, 100]),
            action: process::Action::Crash { node: Target::That }.into(),
            origin: "file".into(),
        }
    }

    #[test]
    fn a_leaders_first_commit_is_a_moment_of_its_own_and_a_later_election_ends_it() {
        let first_commit = Trigger { on: Moment::LeaderFirstCommit, times: 10, ..crash_that_after_election(1, 0) };
        let mut t = Triggers::new(&[first_commit], 7);
        let commit = NodeEvent::Committed { index: 4 };
        t.observe(1, 2, 1, &commit);
        assert_eq!(t.fired(), (vec![0], 0), "no leader yet");
        t.observe(2, 2, 1, &NodeEvent::BecameLeader { term: 3 });
        t.observe(3, 2, 1, &commit);
        t.observe(4, 2, 1, &NodeEvent::Committed { index: 5 });
        assert_eq!(t.fired(), (vec![1], 0), "the first commit only");
        t.observe(5, 1, 1, &NodeEvent::BecameLeader { term: 4 });
        t.observe(6, 3, 1, &NodeEvent::BecameLeader { term: 5 });
        t.observe(7, 1, 1, &commit);
        assert_eq!(t.fired(), (vec![1], 0), "node 1 lost its term to node 3 before committing");
        t.observe(8, 3, 2, &NodeEvent::BecameLeader { term: 1 });
        t.observe(9, 4, 2, &commit);
        assert_eq!(t.fired(), (vec![1], 0), "group 2's election and commits are its own");
        t.observe(10, 3, 1, &commit);
        assert_eq!(t.fired(), (vec![2], 0));
        let mut on: Vec<NodeId> = t.take_due(u64::MAX).iter().map(|d| d.that).collect();
        on.sort_unstable();
        assert_eq!(on, [2, 3], "each on the leader that committed");
    }

    #[test]
    fn a_trigger_fires_on_its_moment_on_that_node_at_most_times_and_only_once_armed() {
        let mut t = Triggers::new(&[crash_that_after_election(2, 1)], 7);
        let elected = NodeEvent::BecameLeader { term: 3 };
        t.observe(500_000, 1, 1, &elected);
        assert_eq!(t.next_due_ns(), None, "not armed before from_ms");
        t.observe(2_000_000, 4, 1, &NodeEvent::Committed { index: 1 });
        assert_eq!(t.next_due_ns(), None, "another moment");
        t.observe(2_000_000, 4, 1, &elected);
        t.observe(3_000_000, 2, 1, &elected);
        t.observe(4_000_000, 3, 1, &elected);
        assert_eq!(t.fired(), (vec![2], 0), "at most `times`");
        let due = t.take_due(u64::MAX);
        assert_eq!(due.iter().map(|d| d.that).collect::<Vec<_>>(), [4, 2], "in order, each on its node");
        assert!(due.iter().all(|d| d.action == process::Action::Crash { node: Target::That }.into()));
    }

    #[test]
    fn delays_are_seeded_and_bounded_and_an_undo_follows() {
        let mut a = Triggers::new(&[crash_that_after_election(1, 0)], 7);
        let mut b = Triggers::new(&[crash_that_after_election(1, 0)], 7);
        for t in [&mut a, &mut b] {
            t.observe(10_000_000, 1, 1, &NodeEvent::BecameLeader { term: 1 });
        }
        let due_at = a.next_due_ns().unwrap();
        assert_eq!(Some(due_at), b.next_due_ns(), "the same seed, the same delay");
        assert!((10_000_000..=15_000_000).contains(&due_at), "{due_at}");
        assert!(a.take_due(due_at - 1).is_empty(), "not due yet");
        let due = a.take_due(due_at);
        assert_eq!(due.len(), 1);
        a.schedule_undo(due_at, &due[0]);
        let undo = a.take_due(u64::MAX);
        assert_eq!(undo[0].action, process::Action::Restart { node: Target::That }.into());
        assert_eq!(undo[0].that, 1, "the undo acts on the same node");
    }

    #[test]
    fn nothing_fires_after_the_heal_and_the_queue_is_bounded() {
        let busy = crash_that_after_election(TIMES_MAX, 0);
        let mut t = Triggers::new(&[busy.clone(), busy], 1);
        for i in 0..u64::from(TIMES_MAX) + 10 {
            t.observe(i, 1, 1, &NodeEvent::BecameLeader { term: i });
        }
        let dropped = 2 * u64::from(TIMES_MAX) - PENDING_MAX as u64;
        assert_eq!(t.fired(), (vec![TIMES_MAX, TIMES_MAX], dropped), "beyond the queue's bound: dropped, counted");
        t.close();
        t.observe(1, 1, 1, &NodeEvent::BecameLeader { term: 1 });
        assert_eq!(t.next_due_ns(), None);
    }

    #[test]
    fn the_nemesis_draws_only_kinds_it_may_use() {
        let only_isolate = draw(5, &[FaultKind::Isolate], 20_000, 3);
        assert_eq!(only_isolate.len(), 5);
        assert!(only_isolate.iter().all(|t| matches!(t.action, Action::Network(network::Action::Isolate { .. }))));
        assert!(draw(5, &[FaultKind::Loss], 20_000, 3).is_empty(), "no trigger aims a loss");
        assert_eq!(draw(3, &[FaultKind::Crash], 20_000, 9), draw(3, &[FaultKind::Crash], 20_000, 9));
    }
}
