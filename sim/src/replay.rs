//! One replay of a run's node events for the checkers: the trace split by Raft group once,
//! and each group's events folded once into every node's log (term and digest per index,
//! and the configuration entries in it) and the committed prefix.
//!
//! The fold, per node: `Appended` writes an index (and drops a configuration that was
//! there; a `ConfigAppended` follows if the new entry is one); `Truncated` cuts the log
//! from an index; `Recovered` keeps only what survived the crash (up to `last_index`; what
//! its snapshot covers stands for the committed entries, as an installed snapshot's), and
//! the node then re-reports every entry it recovered as `Appended`, so the fold's log is
//! the node's own after every restart (a batch written but not synced may survive a
//! crash without its events); a node that recovered leads nothing until it wins again;
//! `SnapshotInstalled` keeps the suffix only if it agrees with the snapshot's last entry
//! (Raft §7) and stands for the committed entries it covers. `Committed` at a node commits
//! the entries that node holds up to the index, each index once, when first committed.
//!
//! What the checkers read besides the events themselves are the moments the properties
//! speak of, with the state they need: every election won (with the winner's log then),
//! and every configuration entry a leader appended in its own term (with every
//! configuration that could still decide then). The committed prefix only grows, so its
//! final value, with commit times, answers "committed before t".

use crate::trace::{TraceEvent, TraceKind};
use phantomdb::node::NodeEvent;
use phantomdb::{GroupId, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// One node event of a group.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub t_ns: u64,
    pub node: NodeId,
    pub event: &'a NodeEvent,
}

/// (term, digest) by index: one node's log.
pub type Log = BTreeMap<u64, (u64, u64)>;

/// An index's entry when it was first committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedEntry {
    pub term: u64,
    pub digest: u64,
    pub t_ns: u64,
}

/// Voters (and, while joint, outgoing voters) of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub voters: BTreeSet<NodeId>,
    pub outgoing: BTreeSet<NodeId>,
}

impl Config {
    /// `members` hold a majority of the voters (and of the outgoing voters while joint).
    pub fn is_quorum(&self, members: &BTreeSet<NodeId>) -> bool {
        let majority = |set: &BTreeSet<NodeId>| set.is_empty() || set.intersection(members).count() > set.len() / 2;
        majority(&self.voters) && majority(&self.outgoing)
    }

    pub fn describe(&self) -> String {
        if self.outgoing.is_empty() {
            format!("{:?}", self.voters)
        } else {
            format!("{:?}->{:?}", self.outgoing, self.voters)
        }
    }
}

/// An election won: the winner's log when it won.
#[derive(Debug, Clone)]
pub struct Election {
    pub t_ns: u64,
    pub node: NodeId,
    pub term: u64,
    pub log: Log,
}

/// Where a configuration that can still decide is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// The newest committed configuration (index 0: the initial one).
    Committed { index: u64 },
    /// Past the commit index, on a log that agrees with the committed prefix.
    Uncommitted { node: NodeId, index: u64 },
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Committed { index } => write!(f, "the committed configuration (index {index})"),
            ConfigSource::Uncommitted { node, index } => {
                write!(f, "n{node}'s uncommitted configuration at index {index}")
            }
        }
    }
}

/// A configuration entry a leader appended in its own term, and every other
/// configuration that could still decide anything at that moment.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    pub t_ns: u64,
    pub node: NodeId,
    pub term: u64,
    pub index: u64,
    pub config: Config,
    pub live: Vec<(ConfigSource, Config)>,
}

/// One Raft group's replay.
#[derive(Debug, Default)]
pub struct GroupReplay<'a> {
    /// The group's node events, in trace order.
    pub steps: Vec<Step<'a>>,
    /// Index -> its entry when first committed (it only grows).
    pub committed: BTreeMap<u64, CommittedEntry>,
    pub elections: Vec<Election>,
    pub config_changes: Vec<ConfigChange>,
}

#[derive(Debug)]
pub struct Replay<'a> {
    /// Every group the cluster was created with, even one without events, and every
    /// group a split made.
    pub groups: BTreeMap<GroupId, GroupReplay<'a>>,
}

impl<'a> Replay<'a> {
    /// Groups `1..=groups`, each with `initial_voters` as its configuration before any
    /// entry (committed by definition).
    pub fn build(trace: &'a [TraceEvent], groups: u64, initial_voters: &[NodeId]) -> Replay<'a> {
        let initial = (1..=groups).map(|g| (g, initial_voters.to_vec())).collect();
        Replay::build_with(trace, initial)
    }

    /// The groups of `keyspace`, each starting with its replicas as voters, and those
    /// the trace shows a split make, starting with the voters the split gave them.
    pub fn of_run(trace: &'a [TraceEvent], keyspace: &phantomdb::keyspace::Keyspace) -> Replay<'a> {
        let mut initial: BTreeMap<GroupId, Vec<NodeId>> =
            keyspace.ranges().iter().map(|r| (r.id, r.replicas.clone())).collect();
        for e in trace {
            if let TraceKind::Node { event: NodeEvent::RangeSplit { right, .. }, .. } = &e.kind {
                initial.entry(right.id).or_insert_with(|| right.replicas.clone());
            }
        }
        Replay::build_with(trace, initial)
    }

    fn build_with(trace: &'a [TraceEvent], initial: BTreeMap<GroupId, Vec<NodeId>>) -> Replay<'a> {
        let mut split: BTreeMap<GroupId, Vec<Step<'a>>> = initial.keys().map(|&g| (g, Vec::new())).collect();
        for e in trace {
            if let TraceKind::Node { node, group, event } = &e.kind {
                split.entry(*group).or_default().push(Step { t_ns: e.t_ns, node: *node, event });
            }
        }
        let groups = split
            .into_iter()
            .map(|(g, steps)| {
                let voters = initial.get(&g).map(|v| v.iter().copied().collect()).unwrap_or_default();
                let config = Config { voters, outgoing: BTreeSet::new() };
                (g, Fold::new(config).run(steps))
            })
            .collect();
        Replay { groups }
    }
}

/// One node's log as the trace shows it, with the configurations in it.
#[derive(Default)]
struct NodeLog {
    entries: Log,
    configs: BTreeMap<u64, Config>,
}

impl NodeLog {
    fn cut_from(&mut self, index: u64) {
        self.entries.split_off(&index);
        self.configs.split_off(&index);
    }
}

struct Fold {
    logs: BTreeMap<NodeId, NodeLog>,
    committed: BTreeMap<u64, CommittedEntry>,
    /// The newest committed configuration and its index.
    committed_config: (u64, Config),
    /// The term each node leads in, from its election until it restarts (a node that
    /// stepped down appends no entry of its old term: they were all its own).
    leading: BTreeMap<NodeId, u64>,
    elections: Vec<Election>,
    config_changes: Vec<ConfigChange>,
}

impl Fold {
    fn new(initial: Config) -> Self {
        Fold {
            logs: BTreeMap::new(),
            committed: BTreeMap::new(),
            committed_config: (0, initial),
            leading: BTreeMap::new(),
            elections: Vec::new(),
            config_changes: Vec::new(),
        }
    }

    fn run(mut self, steps: Vec<Step<'_>>) -> GroupReplay<'_> {
        for s in &steps {
            self.step(s);
        }
        GroupReplay { steps, committed: self.committed, elections: self.elections, config_changes: self.config_changes }
    }

    fn step(&mut self, s: &Step<'_>) {
        let log = self.logs.entry(s.node).or_default();
        match s.event {
            NodeEvent::Appended { index, term, digest } => {
                log.entries.insert(*index, (*term, *digest));
                log.configs.remove(index);
            }
            NodeEvent::Truncated { from } => log.cut_from(*from),
            // Unsynced writes past the surviving prefix were lost in the crash.
            NodeEvent::Recovered { last_index, snapshot_index, .. } => {
                log.cut_from(last_index + 1);
                // A recovered snapshot stands for the committed entries it covers, as an
                // installed one does: its install may have been written and survived a
                // crash inside the sync, before its event was reported (found by
                // rolling_restart seed 467 on slow disks).
                for (&i, c) in self.committed.range(..=*snapshot_index) {
                    log.entries.insert(i, (c.term, c.digest));
                }
                log.configs = log.configs.split_off(&(snapshot_index + 1));
                self.leading.remove(&s.node);
            }
            NodeEvent::SnapshotInstalled { index, term } => {
                // Index 0 is every log's base (term 0), held by all: the empty state a lost
                // replica may fetch keeps its log (found by `splits` seed 221).
                let held = if *index == 0 { Some(0) } else { log.entries.get(index).map(|&(t, _)| t) };
                if held != Some(*term) {
                    log.cut_from(index + 1);
                }
                for (&i, c) in self.committed.range(..=*index) {
                    log.entries.insert(i, (c.term, c.digest));
                }
                // What the snapshot covers is committed: its configuration is tracked as such.
                log.configs = log.configs.split_off(&(index + 1));
            }
            NodeEvent::Committed { index } => {
                let first_new = self.committed.keys().next_back().map_or(1, |&i| i + 1);
                for i in first_new..=*index {
                    if let Some(&(term, digest)) = log.entries.get(&i) {
                        self.committed.insert(i, CommittedEntry { term, digest, t_ns: s.t_ns });
                        if let Some(c) = log.configs.get(&i) {
                            self.committed_config = (i, c.clone());
                        }
                    }
                }
            }
            NodeEvent::BecameLeader { term } => {
                self.leading.insert(s.node, *term);
                self.elections.push(Election { t_ns: s.t_ns, node: s.node, term: *term, log: log.entries.clone() });
            }
            NodeEvent::ConfigAppended { index, term, voters, outgoing } => {
                let config =
                    Config { voters: voters.iter().copied().collect(), outgoing: outgoing.iter().copied().collect() };
                log.configs.insert(*index, config.clone());
                // A follower's copy was looked at when its leader appended it, and so was
                // what a restarted node re-reports. A deposed leader that does not know it
                // yet may append at an index already committed with another entry: that
                // entry can never commit, so (as for any log that diverged below the commit
                // index, `live_configs`) its configuration decides nothing. Found by
                // `moves` seed 94: an isolated leader of term 4 went on with a move at
                // index 429 while term 7 had committed to 452.
                let overwritten = self.committed.get(index).is_some_and(|c| c.term != *term);
                if self.leading.get(&s.node) == Some(term) && !overwritten {
                    let live = self.live_configs((s.node, *index));
                    self.config_changes.push(ConfigChange {
                        t_ns: s.t_ns,
                        node: s.node,
                        term: *term,
                        index: *index,
                        config,
                        live,
                    });
                }
            }
            // Compaction drops entries from memory, not from what the node holds.
            // The log is kept when the data is dropped.
            // A range's span is not the log's business.
            NodeEvent::Applied { .. }
            | NodeEvent::RangeSplit { .. }
            | NodeEvent::RangeInstalled { .. }
            | NodeEvent::RangeReplicas { .. }
            | NodeEvent::ReplicaCollected { .. }
            | NodeEvent::DirectoryTiled { .. }
            | NodeEvent::DataDropped { .. }
            | NodeEvent::Poisoned { .. }
            | NodeEvent::Compacted { .. }
            | NodeEvent::LeaseRead { .. }
            | NodeEvent::ClockDriftExceeded { .. } => {}
        }
    }

    /// The configurations that can still decide anything, but `except` (node, index): the
    /// newest committed one, and uncommitted ones on logs that agree with the committed
    /// prefix.
    fn live_configs(&self, except: (NodeId, u64)) -> Vec<(ConfigSource, Config)> {
        let commit = self.committed.keys().next_back().copied().unwrap_or(0);
        let (index, config) = &self.committed_config;
        let mut live = vec![(ConfigSource::Committed { index: *index }, config.clone())];
        for (&id, log) in &self.logs {
            // A log whose entry at the commit index differs from the committed one
            // diverged below it: nothing after that point can ever commit.
            let agrees = match (log.entries.get(&commit), self.committed.get(&commit)) {
                (Some(&(term, digest)), Some(c)) => (term, digest) == (c.term, c.digest),
                _ => true,
            };
            if !agrees {
                continue;
            }
            for (&index, c) in log.configs.range(commit + 1..) {
                if (id, index) != except {
                    live.push((ConfigSource::Uncommitted { node: id, index }, c.clone()));
                }
            }
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ns: u64, node: u64, group: u64, event: NodeEvent) -> TraceEvent {
        TraceEvent { t_ns, kind: TraceKind::Node { node, group, event } }
    }

    #[test]
    fn events_are_split_by_group_once() {
        let trace = [
            ev(1, 1, 1, NodeEvent::BecameLeader { term: 1 }),
            ev(2, 2, 2, NodeEvent::BecameLeader { term: 1 }),
            ev(3, 1, 1, NodeEvent::Committed { index: 0 }),
        ];
        let r = Replay::build(&trace, 3, &[1, 2, 3]);
        assert_eq!(r.groups[&1].steps.len(), 2);
        assert_eq!(r.groups[&2].steps.len(), 1);
        assert!(r.groups[&3].steps.is_empty(), "a group without events is there, empty");
    }

    #[test]
    fn a_restart_keeps_the_surviving_prefix_and_a_snapshot_the_committed_entries() {
        let trace = [
            ev(1, 1, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(2, 1, 1, NodeEvent::Appended { index: 2, term: 1, digest: 12 }),
            ev(3, 1, 1, NodeEvent::Committed { index: 2 }),
            ev(4, 2, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(5, 2, 1, NodeEvent::Appended { index: 2, term: 1, digest: 12 }),
            ev(6, 2, 1, NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 1, applied_index: 0 }),
            ev(7, 2, 1, NodeEvent::BecameLeader { term: 2 }),
            ev(8, 3, 1, NodeEvent::SnapshotInstalled { index: 2, term: 1 }),
            ev(9, 3, 1, NodeEvent::BecameLeader { term: 3 }),
        ];
        let r = Replay::build(&trace, 1, &[1, 2, 3]);
        let g = &r.groups[&1];
        assert_eq!(g.committed.len(), 2);
        assert_eq!(g.committed[&2], CommittedEntry { term: 1, digest: 12, t_ns: 3 });
        assert_eq!(g.elections[0].log, Log::from([(1, (1, 11))]), "index 2 was lost in the crash");
        assert_eq!(g.elections[1].log, Log::from([(1, (1, 11)), (2, (1, 12))]), "the snapshot covers both");
    }

    #[test]
    fn the_empty_state_installed_at_index_0_keeps_the_log() {
        let trace = [
            ev(1, 1, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(2, 1, 1, NodeEvent::Committed { index: 1 }),
            ev(3, 2, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(4, 2, 1, NodeEvent::SnapshotInstalled { index: 0, term: 0 }),
            ev(5, 2, 1, NodeEvent::BecameLeader { term: 2 }),
        ];
        let r = Replay::build(&trace, 1, &[1, 2, 3]);
        assert_eq!(r.groups[&1].elections[0].log, Log::from([(1, (1, 11))]));
    }

    #[test]
    fn a_configuration_a_restarted_leader_re_reports_is_not_a_change_it_makes() {
        let config = |index| NodeEvent::ConfigAppended { index, term: 1, voters: vec![1, 2], outgoing: vec![] };
        let trace = [
            ev(1, 1, 1, NodeEvent::BecameLeader { term: 1 }),
            ev(2, 1, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(3, 1, 1, config(1)),
            ev(4, 1, 1, NodeEvent::Recovered { term: 1, snapshot_index: 0, last_index: 1, applied_index: 0 }),
            ev(4, 1, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(4, 1, 1, config(1)),
        ];
        let r = Replay::build(&trace, 1, &[1, 2, 3]);
        let changes: Vec<u64> = r.groups[&1].config_changes.iter().map(|c| c.t_ns).collect();
        assert_eq!(changes, [3], "the append as leader only, not the re-report after the restart");
    }

    #[test]
    fn a_recovered_snapshot_stands_for_the_committed_entries_it_covers() {
        // n2's install of a snapshot at 2 was written, but it died inside the sync: no
        // SnapshotInstalled event, only what it recovered.
        let trace = [
            ev(1, 1, 1, NodeEvent::Appended { index: 1, term: 1, digest: 11 }),
            ev(2, 1, 1, NodeEvent::Appended { index: 2, term: 1, digest: 12 }),
            ev(3, 1, 1, NodeEvent::Committed { index: 2 }),
            ev(4, 2, 1, NodeEvent::Recovered { term: 1, snapshot_index: 2, last_index: 2, applied_index: 2 }),
            ev(5, 2, 1, NodeEvent::BecameLeader { term: 2 }),
        ];
        let r = Replay::build(&trace, 1, &[1, 2, 3]);
        assert_eq!(r.groups[&1].elections[0].log, Log::from([(1, (1, 11)), (2, (1, 12))]));
    }
}
