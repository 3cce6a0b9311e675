//! The simulated world of one run: builds a madsim runtime from a resolved scenario, starts
//! the nodes and clients, fires the fault schedule, heals, probes liveness, reads every key
//! at the end, and hands the trace and history to the checkers.
//!
//! ```text
//!   0 ─────────── faulty phase: workload + schedule ─────────── faulty_ms ── heal ──┐
//!                                                                                   │
//!   probe: a write must commit within liveness_timeout_ms ◀─────────────────────────┤
//!   workload goes on for healed_ms, stops; final reads of every key ◀───────────────┘
//! ```

use crate::history::Op;
use crate::scenario::{Action, Scenario, Target};
use crate::trace::{TraceEvent, TraceKind};
use crate::verdict::RunOutput;
use crate::workload::{self, Client, CLIENT_ID_BASE};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use phantomdb::io::storage::{SimDisk, SimStorage};
use phantomdb::io::transport::{set_duplicate_rate, sim_addr, SimTransport};
use phantomdb::io::SkewedClock;
use phantomdb::keyspace::Keyspace;
use phantomdb::kv::KvStateMachine;
use phantomdb::node::{Node, NodeConfig, NodeEvent, Observer};
use phantomdb::{GroupId, NodeId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The group operators' faults (transfers, membership changes) act on.
const OPERATOR_GROUP: GroupId = 1;

/// Records node events into the world's trace.
struct TraceObserver {
    start: Instant,
    trace: Arc<Mutex<Vec<TraceEvent>>>,
}

impl Observer for TraceObserver {
    fn on_event(&self, node: NodeId, group: GroupId, event: NodeEvent) {
        let t_ns = self.start.elapsed().as_nanos() as u64;
        self.trace.lock().expect("trace lock").push(TraceEvent { t_ns, kind: TraceKind::Node { node, group, event } });
    }
}

fn latency(ms: [u64; 2]) -> std::ops::Range<Duration> {
    // madsim draws from a half-open range, which must not be empty.
    Duration::from_millis(ms[0])..Duration::from_millis(ms[1]) + Duration::from_micros(1)
}

/// Runs one seed of `scenario` to completion. A panic anywhere in the simulation (an
/// invariant assertion of a core, most often) ends the run; it comes back as
/// `RunOutput::panic` with the trace up to that point.
pub fn run(scenario: &Scenario) -> RunOutput {
    let mut config = madsim::Config::default();
    config.net.send_latency = latency(scenario.latency_ms);
    config.net.packet_loss_rate = scenario.loss;
    let rt = Runtime::with_seed_and_config(scenario.seed, config);
    rt.add_simulator::<SimDisk>();
    let trace = Arc::new(Mutex::new(Vec::new()));
    let history = Arc::new(Mutex::new(Vec::new()));
    let world = World::new(scenario.clone(), trace.clone(), history.clone());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(world.run())));
    match result {
        Ok(out) => out,
        Err(payload) => {
            let message = crate::panics::message(payload.as_ref());
            let trace = std::mem::take(&mut *trace.lock().unwrap_or_else(|e| e.into_inner()));
            let mut history = std::mem::take(&mut *history.lock().unwrap_or_else(|e| e.into_inner()));
            history.sort_by_key(|o| (o.call, o.ret));
            let simulated_ns = trace.last().map_or(0, |e: &TraceEvent| e.t_ns);
            RunOutput { trace, history, heal_ns: 0, first_write_ns: None, simulated_ns, panic: Some(message) }
        }
    }
}

struct World {
    scenario: Scenario,
    start: Instant,
    trace: Arc<Mutex<Vec<TraceEvent>>>,
    history: Arc<Mutex<Vec<Op>>>,
    servers: BTreeMap<NodeId, NodeHandle>,
    /// The client API of each server's current incarnation (for operator actions).
    node_apis: Arc<Mutex<BTreeMap<NodeId, phantomdb::node::NodeHandle<KvStateMachine>>>>,
    clocks: BTreeMap<NodeId, Arc<SkewedClock>>,
    up: BTreeSet<NodeId>,
    clogged: BTreeSet<(NodeId, NodeId)>,
    /// Every client host created, to be killed at the end with the servers.
    client_hosts: Vec<madsim::task::NodeId>,
    rng: ChaCha8Rng,
}

impl World {
    fn new(scenario: Scenario, trace: Arc<Mutex<Vec<TraceEvent>>>, history: Arc<Mutex<Vec<Op>>>) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x0057_4f52_4c44);
        World {
            scenario,
            start: Instant::now(),
            trace,
            history,
            servers: BTreeMap::new(),
            node_apis: Arc::new(Mutex::new(BTreeMap::new())),
            clocks: BTreeMap::new(),
            up: BTreeSet::new(),
            clogged: BTreeSet::new(),
            client_hosts: Vec::new(),
            rng,
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn log(&self, kind: TraceKind) {
        let t_ns = self.now_ns();
        self.trace.lock().expect("trace lock").push(TraceEvent { t_ns, kind });
    }

    fn start_servers(&mut self) {
        // The rate is process-wide: set it for this run before any frame moves.
        set_duplicate_rate(self.scenario.duplicate);
        let handle = Handle::current();
        // Every node runs; the first `initial_voters` form the group, the others wait to
        // be added.
        let voters: Vec<NodeId> = (1..=self.scenario.initial_voters).collect();
        for id in 1..=self.scenario.nodes {
            let clock = SkewedClock::new();
            let incarnation = Arc::new(AtomicU64::new(0));
            let observer: Arc<dyn Observer> = Arc::new(TraceObserver { start: self.start, trace: self.trace.clone() });
            let s = &self.scenario;
            // The seed is set per incarnation below.
            let mut cfg = NodeConfig::new(id, voters.clone(), 0);
            cfg.keyspace = Keyspace::hashed(s.groups).expect("validated with the scenario");
            cfg.snapshot_entries_min = s.snapshot_entries;
            cfg.request_timeout_ms = s.request_timeout_ms;
            let r = &mut cfg.raft;
            r.election_timeout_ms_min = s.election_timeout_ms[0];
            r.election_timeout_ms_max = s.election_timeout_ms[1].max(s.election_timeout_ms[0] + 1);
            r.heartbeat_interval_ms = s.heartbeat_interval_ms;
            r.append_entries_max = s.append_entries_max;
            r.pre_vote = s.pre_vote;
            r.check_quorum = s.check_quorum;
            r.lease_reads = s.lease_reads;
            r.clock_drift_ppm_max = s.clock_drift_ppm_max;
            r.snapshot_chunk_bytes_max = s.snapshot_chunk_bytes;
            r.planted_bug = s.planted_bug;
            let seed = s.seed;
            let node_clock = clock.clone();
            let apis = self.node_apis.clone();
            let node = handle
                .create_node()
                .name(format!("n{id}"))
                .ip(sim_addr(id).ip())
                .init(move || {
                    let mut cfg = cfg.clone();
                    let inc = incarnation.fetch_add(1, Ordering::Relaxed);
                    // A fresh, seeded stream for each incarnation of each node.
                    cfg.seed = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ (id << 32) ^ inc;
                    let clock = node_clock.clone();
                    let observer = observer.clone();
                    let apis = apis.clone();
                    async move {
                        let (transport, inbox) = SimTransport::bind(id).await.expect("node endpoint binds");
                        let storage = SimStorage::open();
                        match Node::<_, _, KvStateMachine>::new(cfg, transport, inbox, storage, clock, observer.clone())
                        {
                            Ok((node, api)) => {
                                apis.lock().expect("node api lock").insert(id, api);
                                // A poisoned node returns here and stays silent until restarted.
                                let _ = node.run().await;
                            }
                            Err(e) => observer.on_event(id, 1, NodeEvent::Poisoned { error: e.to_string() }),
                        }
                    }
                })
                .build();
            self.servers.insert(id, node);
            self.clocks.insert(id, clock);
            self.up.insert(id);
        }
    }

    fn client_node(&mut self, sim_id: NodeId, name: &str) -> NodeHandle {
        let host = Handle::current().create_node().name(name).ip(sim_addr(sim_id).ip()).build();
        self.client_hosts.push(host.id());
        host
    }

    /// Kills every host, so that their pending tasks are dropped: madsim does not free a
    /// runtime's pending tasks when it ends, and the fuzzer runs thousands of worlds in
    /// one process (found as an out-of-memory by `sim_schedule`).
    fn kill_all(&mut self) {
        let handle = Handle::current();
        for id in self.servers.values().map(|h| h.id()).chain(self.client_hosts.drain(..)) {
            handle.kill(id);
        }
    }

    async fn run(mut self) -> RunOutput {
        // The clock starts inside the runtime (simulated time), not when `new` ran.
        self.start = Instant::now();
        let s = self.scenario.clone();
        self.log(TraceKind::Phase("faulty".into()));
        self.start_servers();
        let heal_at = self.start + Duration::from_millis(s.faulty_ms);
        let stop_at = heal_at + Duration::from_millis(s.healed_ms);
        let mut clients = Vec::new();
        for c in 1..=s.clients {
            let sim_id = CLIENT_ID_BASE + c;
            let (scenario, history, start) = (s.clone(), self.history.clone(), self.start);
            clients.push(self.client_node(sim_id, &format!("c{c}")).spawn(async move {
                let client = Client::connect(format!("c{c}"), sim_id, scenario.seed, &scenario, start, history).await;
                workload::run_client(client, c, scenario, stop_at).await;
            }));
        }

        for f in s.schedule.clone() {
            tokio::time::sleep_until(self.start + Duration::from_millis(f.at_ms)).await;
            self.apply(&f.action);
        }
        tokio::time::sleep_until(heal_at).await;
        self.heal_all();
        let heal_ns = self.now_ns();
        self.log(TraceKind::Phase("healed".into()));

        let probe_id = CLIENT_ID_BASE + s.clients + 1;
        let (scenario, history, start) = (s.clone(), self.history.clone(), self.start);
        let give_up = heal_at + Duration::from_millis(s.liveness_timeout_ms);
        let probe = self.client_node(probe_id, "probe").spawn(async move {
            let client = Client::connect("probe".into(), probe_id, scenario.seed, &scenario, start, history).await;
            workload::run_probe(client, scenario.groups, give_up).await
        });
        for c in clients {
            c.await.expect("client task");
        }
        let first_write_ns = probe.await.expect("probe task");

        // Every workload call has returned by now; read the final state of every key.
        self.log(TraceKind::Phase("final reads".into()));
        let final_id = CLIENT_ID_BASE + s.clients + 2;
        let (scenario, history, start) = (s.clone(), self.history.clone(), self.start);
        let give_up = stop_at.max(Instant::now()) + Duration::from_millis(s.liveness_timeout_ms);
        self.client_node(final_id, "final")
            .spawn(async move {
                let client = Client::connect("final".into(), final_id, scenario.seed, &scenario, start, history).await;
                workload::run_final_reads(client, scenario, give_up).await;
            })
            .await
            .expect("final reads task");
        self.log(TraceKind::Phase("end".into()));

        let simulated_ns = self.now_ns();
        self.kill_all();
        let trace = std::mem::take(&mut *self.trace.lock().expect("trace lock"));
        let mut history = std::mem::take(&mut *self.history.lock().expect("history lock"));
        history.sort_by_key(|o| (o.call, o.ret));
        RunOutput { trace, history, heal_ns, first_write_ns, simulated_ns, panic: None }
    }

    /// The node a target names now, if any is up.
    fn resolve(&mut self, target: Target) -> Option<NodeId> {
        let up: Vec<NodeId> = self.up.iter().copied().collect();
        let leader = self.current_leader();
        match target {
            Target::Node(n) => Some(n),
            Target::Leader => leader.or_else(|| up.choose(&mut self.rng).copied()),
            Target::Follower => {
                let followers: Vec<NodeId> = up.iter().copied().filter(|&n| Some(n) != leader).collect();
                followers.choose(&mut self.rng).copied()
            }
        }
    }

    /// The up node that most recently won an election in group 1's highest term.
    fn current_leader(&self) -> Option<NodeId> {
        let trace = self.trace.lock().expect("trace lock");
        trace
            .iter()
            .rev()
            .filter_map(|e| match &e.kind {
                // Operators' requests (transfers, membership) act on group 1.
                TraceKind::Node { node, group: 1, event: NodeEvent::BecameLeader { term } } => Some((*term, *node)),
                _ => None,
            })
            .max()
            .map(|(_, n)| n)
            .filter(|n| self.up.contains(n))
    }

    fn sim_id(&self, node: NodeId) -> madsim::task::NodeId {
        self.servers[&node].id()
    }

    fn clog(&mut self, from: NodeId, to: NodeId) {
        NetSim::current().clog_link(self.sim_id(from), self.sim_id(to));
        self.clogged.insert((from, to));
    }

    fn unclog(&mut self, from: NodeId, to: NodeId) {
        NetSim::current().unclog_link(self.sim_id(from), self.sim_id(to));
        self.clogged.remove(&(from, to));
    }

    fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.unclog_all();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            self.clog(x, y);
                        }
                    }
                }
            }
        }
    }

    fn unclog_all(&mut self) {
        for (a, b) in std::mem::take(&mut self.clogged) {
            NetSim::current().unclog_link(self.sim_id(a), self.sim_id(b));
        }
    }

    fn crash(&mut self, node: NodeId) {
        if self.up.remove(&node) {
            Handle::current().kill(self.sim_id(node));
            if let Some(loss) = SimDisk::last_crash(self.sim_id(node)) {
                self.log(TraceKind::Fault(format!(
                    "n{node} lost {} of {} unsynced batches",
                    loss.unsynced_batches - loss.kept_batches,
                    loss.unsynced_batches
                )));
            }
        }
    }

    fn restart(&mut self, node: NodeId) {
        self.crash(node);
        Handle::current().restart(self.sim_id(node));
        self.up.insert(node);
    }

    fn apply(&mut self, action: &Action) {
        let described = match action {
            Action::Partition { groups } => {
                self.partition(groups);
                action.to_string()
            }
            Action::Isolate { node } => match self.resolve(*node) {
                Some(n) => {
                    let rest: Vec<NodeId> = (1..=self.scenario.nodes).filter(|&m| m != n).collect();
                    self.partition(&[vec![n], rest]);
                    format!("isolate n{n} ({node})")
                }
                None => format!("{action}: no such node up, skipped"),
            },
            Action::Heal => {
                self.unclog_all();
                "heal".into()
            }
            Action::Crash { node } => match self.resolve(*node) {
                Some(n) => {
                    self.crash(n);
                    format!("crash n{n} ({node})")
                }
                None => format!("{action}: no node up, skipped"),
            },
            Action::Restart { node } => match self.resolve(*node) {
                Some(n) => {
                    self.restart(n);
                    format!("restart n{n}")
                }
                None => format!("{action}: no node, skipped"),
            },
            Action::Clog { from, to } => {
                self.clog(*from, *to);
                action.to_string()
            }
            Action::Unclog { from, to } => {
                self.unclog(*from, *to);
                action.to_string()
            }
            Action::Loss { rate } => {
                let rate = rate.unwrap_or(self.scenario.loss);
                NetSim::current().update_config(|c| c.packet_loss_rate = rate);
                action.to_string()
            }
            Action::Duplicate { rate } => {
                set_duplicate_rate(rate.unwrap_or(self.scenario.duplicate));
                action.to_string()
            }
            Action::Latency { ms } => {
                let ms = ms.unwrap_or(self.scenario.latency_ms);
                NetSim::current().update_config(|c| c.send_latency = latency(ms));
                action.to_string()
            }
            Action::ClockSkew { node, offset_ms, drift_ppm } => match self.resolve(*node) {
                Some(n) => {
                    self.clocks[&n].set_skew(*offset_ms, *drift_ppm);
                    format!("clock_skew n{n} offset {offset_ms}ms drift {drift_ppm}ppm")
                }
                None => format!("{action}: no node, skipped"),
            },
            Action::TransferLeader { to } => {
                let leader = self.current_leader();
                let target = self.resolve(*to);
                let api = leader.and_then(|l| self.node_apis.lock().expect("node api lock").get(&l).cloned());
                match (leader, target, api) {
                    (Some(l), Some(t), Some(api)) if l != t => {
                        // Refusals (it stopped leading meanwhile) are part of the game.
                        tokio::spawn(async move {
                            let _ = api.transfer_leadership(OPERATOR_GROUP, t).await;
                        });
                        format!("transfer_leader n{l} -> n{t}")
                    }
                    _ => format!("{action}: no leader or no other node, skipped"),
                }
            }
            Action::AddVoter { node } | Action::RemoveVoter { node } | Action::AddLearner { node } => {
                self.change_membership(action, *node)
            }
            Action::SetVoters { voters } => self.set_voters(action, voters),
            Action::DiskError { node } => match self.resolve(*node) {
                Some(n) => {
                    SimDisk::inject_io_error(self.sim_id(n));
                    format!("disk_error n{n}")
                }
                None => format!("{action}: no node, skipped"),
            },
        };
        self.log(TraceKind::Fault(described));
    }

    /// Asks the current leader to make `voters` the voters (learners among them promoted).
    fn set_voters(&mut self, action: &Action, voters: &[NodeId]) -> String {
        let leader = self.current_leader();
        let api = leader.and_then(|l| self.node_apis.lock().expect("node api lock").get(&l).cloned());
        let (Some(l), Some(api)) = (leader, api) else {
            return format!("{action}: no leader, skipped");
        };
        let voters: BTreeSet<NodeId> = voters.iter().copied().collect();
        let learners: BTreeSet<NodeId> = api.status().learners.into_iter().filter(|n| !voters.contains(n)).collect();
        let described = format!("{action} via n{l}: voters {voters:?} learners {learners:?}");
        tokio::spawn(async move {
            let _ = api.change_membership(OPERATOR_GROUP, voters, learners).await;
        });
        described
    }

    /// Asks the current leader to change the configuration it has in force, as an operator
    /// would; a change it refuses (one in progress, no longer leader) is part of the game.
    fn change_membership(&mut self, action: &Action, node: Target) -> String {
        let leader = self.current_leader();
        let target = self.resolve(node);
        let api = leader.and_then(|l| self.node_apis.lock().expect("node api lock").get(&l).cloned());
        let (Some(l), Some(t), Some(api)) = (leader, target, api) else {
            return format!("{action}: no leader or no such node, skipped");
        };
        let status = api.status();
        let mut voters: BTreeSet<NodeId> = status.voters.iter().copied().collect();
        let mut learners: BTreeSet<NodeId> = status.learners.iter().copied().collect();
        match action {
            Action::AddVoter { .. } => {
                learners.remove(&t);
                voters.insert(t);
            }
            Action::RemoveVoter { .. } => {
                voters.remove(&t);
                learners.remove(&t);
            }
            _ if voters.contains(&t) => return format!("{action}: n{t} is a voter, skipped"),
            _ => {
                learners.insert(t);
            }
        }
        if voters.is_empty() {
            return format!("{action}: n{t} is the last voter, skipped");
        }
        let described = format!("{action} via n{l}: voters {voters:?} learners {learners:?}");
        tokio::spawn(async move {
            let _ = api.change_membership(OPERATOR_GROUP, voters, learners).await;
        });
        described
    }

    /// Ends the faulty phase: network whole again, clocks true, every node running.
    fn heal_all(&mut self) {
        self.unclog_all();
        let (loss, lat) = (self.scenario.loss, self.scenario.latency_ms);
        set_duplicate_rate(self.scenario.duplicate);
        NetSim::current().update_config(|c| {
            c.packet_loss_rate = loss;
            c.send_latency = latency(lat);
        });
        for clock in self.clocks.values() {
            clock.set_skew(0, 0);
        }
        let poisoned = self.poisoned();
        for n in 1..=self.scenario.nodes {
            if !self.up.contains(&n) || poisoned.contains(&n) {
                self.restart(n);
                self.log(TraceKind::Fault(format!("heal: restart n{n}")));
            }
        }
        // A disk error injected but not yet hit would poison a node after the heal.
        for n in 1..=self.scenario.nodes {
            let id = self.sim_id(n);
            SimDisk::clear_faults(id);
        }
    }

    /// Nodes whose last life ended in a storage failure.
    fn poisoned(&self) -> BTreeSet<NodeId> {
        let mut state: BTreeMap<NodeId, bool> = BTreeMap::new();
        for e in self.trace.lock().expect("trace lock").iter() {
            if let TraceKind::Node { node, event, .. } = &e.kind {
                match event {
                    NodeEvent::Recovered { .. } => {
                        state.insert(*node, false);
                    }
                    NodeEvent::Poisoned { .. } => {
                        state.insert(*node, true);
                    }
                    _ => {}
                }
            }
        }
        state.into_iter().filter(|&(_, p)| p).map(|(n, _)| n).collect()
    }
}
