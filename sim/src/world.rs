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

use crate::faults::trigger::Triggers;
use crate::faults::{self, process, FaultEvent, Target};
use crate::history::Op;
use crate::scenario::Scenario;
use crate::trace::{Phase, TraceEvent, TraceKind};
use crate::verdict::RunOutput;
use crate::view::LiveView;
use crate::workload::{self, Client, CLIENT_ID_BASE};
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use phantomdb::io::storage::{SimDisk, SimStorage};
use phantomdb::io::transport::{set_duplicate_rate, sim_addr, SimTransport};
use phantomdb::io::SkewedClock;
use phantomdb::kv::KvStateMachine;
use phantomdb::node::{Node, NodeConfig, NodeEvent, Observer, SplitPolicy};
use phantomdb::{GroupId, NodeId};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a run has recorded so far: the trace, and the live view of it; and the triggers
/// the events set off, with a bell the world's fault loop waits on.
#[derive(Default)]
struct Recording {
    trace: Vec<TraceEvent>,
    view: LiveView,
    triggers: Triggers,
    due: Arc<Notify>,
}

/// The nodes' observer: records each event and updates the view with it.
struct Recorder {
    start: Instant,
    recording: Arc<Mutex<Recording>>,
}

impl Observer for Recorder {
    fn on_event(&self, node: NodeId, group: GroupId, event: NodeEvent) {
        let t_ns = self.start.elapsed().as_nanos() as u64;
        let mut r = self.recording.lock().expect("recording lock");
        r.view.observe(node, group, &event);
        let before = r.triggers.next_due_ns();
        r.triggers.observe(t_ns, node, group, &event);
        if r.triggers.next_due_ns() != before {
            r.due.notify_one();
        }
        r.trace.push(TraceEvent { t_ns, kind: TraceKind::Node { node, group, event } });
    }
}

pub(crate) fn latency(ms: [u64; 2]) -> std::ops::Range<Duration> {
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
    let recording = Arc::new(Mutex::new(Recording::default()));
    let history = Arc::new(Mutex::new(Vec::new()));
    let world = World::new(scenario.clone(), recording.clone(), history.clone());
    // Both registries are this thread's, where madsim runs the whole world.
    if scenario.buggify {
        phantomdb::buggify::enable(scenario.seed, &scenario.buggify_armed);
    }
    phantomdb::sometimes::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(world.run())));
    let (buggify, marks) = (phantomdb::buggify::disable(), phantomdb::sometimes::finish());
    match result {
        Ok(out) => RunOutput { buggify, marks, ..out },
        Err(payload) => {
            let message = crate::panics::message(payload.as_ref());
            let trace = std::mem::take(&mut recording.lock().unwrap_or_else(|e| e.into_inner()).trace);
            let mut history = std::mem::take(&mut *history.lock().unwrap_or_else(|e| e.into_inner()));
            history.sort_by_key(|o| (o.call, o.ret));
            let simulated_ns = trace.last().map_or(0, |e: &TraceEvent| e.t_ns);
            RunOutput {
                trace,
                history,
                heal_ns: 0,
                first_write_ns: None,
                simulated_ns,
                panic: Some(message),
                buggify,
                marks,
            }
        }
    }
}

/// The world as the faults see it (`crate::faults` applies them through it).
pub(crate) struct World {
    pub(crate) scenario: Scenario,
    start: Instant,
    recording: Arc<Mutex<Recording>>,
    history: Arc<Mutex<Vec<Op>>>,
    servers: BTreeMap<NodeId, NodeHandle>,
    /// The client API of each server's current incarnation (for operator actions).
    pub(crate) node_apis: Arc<Mutex<BTreeMap<NodeId, phantomdb::node::NodeHandle<KvStateMachine>>>>,
    pub(crate) clocks: BTreeMap<NodeId, Arc<SkewedClock>>,
    up: BTreeSet<NodeId>,
    /// Nodes of `added_nodes` that have not started yet (`add_node`).
    to_add: BTreeSet<NodeId>,
    clogged: BTreeSet<(NodeId, NodeId)>,
    /// Every client host created, to be killed at the end with the servers.
    client_hosts: Vec<madsim::task::NodeId>,
    rng: ChaCha8Rng,
    /// While a trigger's fault fires: the node its event happened on ("that").
    that: Option<NodeId>,
}

impl World {
    fn new(scenario: Scenario, recording: Arc<Mutex<Recording>>, history: Arc<Mutex<Vec<Op>>>) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x0057_4f52_4c44);
        World {
            scenario,
            start: Instant::now(),
            recording,
            history,
            servers: BTreeMap::new(),
            node_apis: Arc::new(Mutex::new(BTreeMap::new())),
            clocks: BTreeMap::new(),
            up: BTreeSet::new(),
            to_add: BTreeSet::new(),
            clogged: BTreeSet::new(),
            client_hosts: Vec::new(),
            rng,
            that: None,
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub(crate) fn log(&self, kind: TraceKind) {
        let t_ns = self.now_ns();
        self.recording.lock().expect("recording lock").trace.push(TraceEvent { t_ns, kind });
    }

    fn start_servers(&mut self) {
        // The rate is process-wide: set it for this run before any frame moves.
        set_duplicate_rate(self.scenario.duplicate);
        let handle = Handle::current();
        // Every node runs but the added ones; the first `initial_voters` form the group,
        // the others wait to be added.
        let voters: Vec<NodeId> = (1..=self.scenario.initial_voters).collect();
        let added = self.scenario.initial_voters - self.scenario.added_nodes + 1..=self.scenario.initial_voters;
        for id in 1..=self.scenario.nodes {
            let clock = SkewedClock::new();
            let incarnation = Arc::new(AtomicU64::new(0));
            let observer: Arc<dyn Observer> =
                Arc::new(Recorder { start: self.start, recording: self.recording.clone() });
            let s = &self.scenario;
            // The seed is set per incarnation below.
            let mut cfg = NodeConfig::new(id, voters.clone(), 0);
            cfg.keyspace = s.keyspace();
            cfg.snapshot_entries_min = s.snapshot_entries;
            cfg.split = SplitPolicy { range_bytes_max: s.range_bytes_max, range_ops_per_s_max: s.range_ops_per_s_max };
            cfg.request_timeout_ms = s.request_timeout_ms;
            cfg.placement = s.placement;
            cfg.node_dead_ms = s.node_dead_ms;
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
            if added.contains(&id) {
                // Killed before its first poll: it has never run when `add_node` starts it.
                handle.kill(node.id());
                self.to_add.insert(id);
            } else {
                self.up.insert(id);
            }
            self.servers.insert(id, node);
            self.clocks.insert(id, clock);
        }
        // Before any node runs its first batch (they start at the next yield).
        faults::disk::init(self);
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
        self.log(TraceKind::Phase(Phase::Faulty));
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

        self.run_faults(heal_at).await;
        self.heal_all();
        let heal_ns = self.now_ns();
        self.log(TraceKind::Phase(Phase::Healed));

        let probe_id = CLIENT_ID_BASE + s.clients + 1;
        let (scenario, history, start) = (s.clone(), self.history.clone(), self.start);
        let give_up = heal_at + Duration::from_millis(s.liveness_timeout_ms);
        let probe = self.client_node(probe_id, "probe").spawn(async move {
            let client = Client::connect("probe".into(), probe_id, scenario.seed, &scenario, start, history).await;
            workload::run_probe(client, give_up).await
        });
        for c in clients {
            c.await.expect("client task");
        }
        let first_write_ns = probe.await.expect("probe task");

        // Every workload call has returned by now; read the final state of every key.
        self.log(TraceKind::Phase(Phase::FinalReads));
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
        self.log(TraceKind::Phase(Phase::End));

        let simulated_ns = self.now_ns();
        self.kill_all();
        let trace = std::mem::take(&mut self.recording.lock().expect("recording lock").trace);
        let mut history = std::mem::take(&mut *self.history.lock().expect("history lock"));
        history.sort_by_key(|o| (o.call, o.ret));
        // The caller fills in what the registries saw, once the runtime is done.
        RunOutput { trace, history, heal_ns, first_write_ns, simulated_ns, panic: None, buggify: vec![], marks: vec![] }
    }

    /// The faulty phase: the timed schedule, and what triggers make due as events arrive,
    /// each fired at its time (timed ones first when they coincide), until `heal_at`.
    async fn run_faults(&mut self, heal_at: Instant) {
        let (triggers, due) = (Triggers::new(&self.scenario.triggers, self.scenario.seed), Arc::new(Notify::new()));
        {
            let mut r = self.recording.lock().expect("recording lock");
            r.triggers = triggers;
            r.due = due.clone();
        }
        let schedule = self.scenario.schedule.clone();
        let mut timed = schedule.iter().peekable();
        let heal_ns = self.scenario.faulty_ms * 1_000_000;
        loop {
            let next_timed = timed.peek().map(|f| f.at_ms * 1_000_000);
            let next_due = self.recording.lock().expect("recording lock").triggers.next_due_ns();
            let next = [next_timed, next_due].into_iter().flatten().min().filter(|&t| t < heal_ns);
            let wake = next.map_or(heal_at, |t| self.start + Duration::from_nanos(t));
            tokio::select! {
                // Biased: an unbiased select picks a branch with tokio's thread-local
                // random state, which a second run in the same process does not share
                // (found by `hunt`: leader_isolation seed 15 was not deterministic).
                biased;
                _ = tokio::time::sleep_until(wake) => {}
                // A trigger fired: something may be due sooner.
                _ = due.notified() => continue,
            }
            if next.is_none() {
                break;
            }
            let now = self.now_ns();
            while let Some(f) = timed.next_if(|f| f.at_ms * 1_000_000 <= now) {
                let event = f.action.apply(self);
                self.log(TraceKind::Fault(event));
            }
            let fired = self.recording.lock().expect("recording lock").triggers.take_due(now);
            for d in fired {
                self.that = Some(d.that);
                let event = d.action.apply(self);
                self.that = None;
                self.log(TraceKind::Fault(event));
                self.recording.lock().expect("recording lock").triggers.schedule_undo(now, &d);
            }
        }
        self.recording.lock().expect("recording lock").triggers.close();
    }

    /// The node a target names now, if any is up.
    pub(crate) fn resolve(&mut self, target: Target) -> Option<NodeId> {
        let up: Vec<NodeId> = self.up.iter().copied().collect();
        let leader = self.current_leader();
        match target {
            Target::Node(n) => Some(n),
            Target::Leader => leader.or_else(|| up.choose(&mut self.rng).copied()),
            Target::Follower => {
                let followers: Vec<NodeId> = up.iter().copied().filter(|&n| Some(n) != leader).collect();
                followers.choose(&mut self.rng).copied()
            }
            Target::That => self.that,
            Target::Other => {
                let others: Vec<NodeId> = up.iter().copied().filter(|&n| Some(n) != self.that).collect();
                others.choose(&mut self.rng).copied()
            }
        }
    }

    /// A key of the workload, drawn from the world's stream (where a `split` with no
    /// key cuts).
    pub(crate) fn random_workload_key(&mut self) -> String {
        let (registers, appends) = crate::workload::keys(&self.scenario);
        let all: Vec<String> = registers.into_iter().chain(appends).collect();
        all.choose(&mut self.rng).cloned().unwrap_or_else(|| "k".into())
    }

    /// The range map of the lowest-numbered node up (maybe stale for ranges it does not host).
    pub(crate) fn range_map(&self) -> Option<phantomdb::keyspace::Keyspace> {
        let apis = self.node_apis.lock().expect("node api lock");
        self.up.iter().find_map(|n| apis.get(n)).map(|api| api.range_map())
    }

    /// A node outside `replicas`, drawn from the world's stream.
    pub(crate) fn random_node_outside(&mut self, replicas: &[NodeId]) -> Option<NodeId> {
        let outside: Vec<NodeId> = (1..=self.scenario.nodes).filter(|n| !replicas.contains(n)).collect();
        outside.choose(&mut self.rng).copied()
    }

    /// The up node that most recently won an election in `group`'s highest term.
    pub(crate) fn leader_of(&self, group: phantomdb::GroupId) -> Option<NodeId> {
        self.recording.lock().expect("recording lock").view.leader(group).filter(|n| self.up.contains(n))
    }

    /// The up node that most recently won an election in group 1's highest term
    /// (operators' requests act on group 1).
    pub(crate) fn current_leader(&self) -> Option<NodeId> {
        self.recording.lock().expect("recording lock").view.leader(1).filter(|n| self.up.contains(n))
    }

    /// Nodes whose last life ended in a storage failure.
    pub(crate) fn poisoned(&self) -> BTreeSet<NodeId> {
        self.recording.lock().expect("recording lock").view.poisoned().clone()
    }

    /// Whether `node` waits for a peer's state in some group (it dropped its own).
    pub(crate) fn rebuilding(&self, node: NodeId) -> bool {
        self.recording.lock().expect("recording lock").view.rebuilding(node)
    }

    pub(crate) fn is_up(&self, node: NodeId) -> bool {
        self.up.contains(&node)
    }

    pub(crate) fn sim_id(&self, node: NodeId) -> madsim::task::NodeId {
        self.servers[&node].id()
    }

    /// Holds back messages from `from` to `to`.
    pub(crate) fn clog(&mut self, from: NodeId, to: NodeId) {
        NetSim::current().clog_link(self.sim_id(from), self.sim_id(to));
        self.clogged.insert((from, to));
    }

    pub(crate) fn unclog(&mut self, from: NodeId, to: NodeId) {
        NetSim::current().unclog_link(self.sim_id(from), self.sim_id(to));
        self.clogged.remove(&(from, to));
    }

    pub(crate) fn unclog_all(&mut self) {
        for (a, b) in std::mem::take(&mut self.clogged) {
            NetSim::current().unclog_link(self.sim_id(a), self.sim_id(b));
        }
    }

    /// Kills a running node's host; the disk keeps what was synced (and perhaps some of
    /// what was not).
    pub(crate) fn crash(&mut self, node: NodeId) {
        if self.up.remove(&node) {
            Handle::current().kill(self.sim_id(node));
            if let Some(loss) = SimDisk::last_crash(self.sim_id(node)) {
                self.log(TraceKind::Fault(FaultEvent::Process(process::Applied::LostUnsynced {
                    node,
                    lost: (loss.unsynced_batches - loss.kept_batches) as u64,
                    unsynced: loss.unsynced_batches as u64,
                })));
            }
        }
    }

    pub(crate) fn waiting_to_add(&self, node: NodeId) -> bool {
        self.to_add.contains(&node)
    }

    /// The lowest-numbered node waiting to be added.
    pub(crate) fn next_to_add(&self) -> Option<NodeId> {
        self.to_add.first().copied()
    }

    /// Starts a node waiting to be added, for the first time; false if it was not waiting.
    pub(crate) fn add_node(&mut self, node: NodeId) -> bool {
        if !self.to_add.remove(&node) {
            return false;
        }
        Handle::current().restart(self.sim_id(node));
        self.up.insert(node);
        true
    }

    /// Crashes the node if it runs, and starts a new incarnation from its disk.
    pub(crate) fn restart(&mut self, node: NodeId) {
        self.crash(node);
        Handle::current().restart(self.sim_id(node));
        self.up.insert(node);
    }

    /// Ends the faulty phase: network whole again, clocks true, every node running, no
    /// disk fault left armed.
    fn heal_all(&mut self) {
        faults::network::heal(self);
        faults::link::heal(self);
        faults::clock::heal(self);
        faults::process::heal(self);
        faults::disk::heal(self);
    }
}
