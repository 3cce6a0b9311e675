//! Simulated clients. Each is its own madsim node, talks to the cluster through the same
//! transport as the nodes (so partitions and loss reach clients too), and records every
//! operation with its simulated call and return times.
//!
//! A call that fails *definitely* (no leader, not the leader, busy) did nothing and is
//! retried against the hinted leader; a call that times out or is displaced is recorded
//! as unknown and never retried (a retry could apply it twice).

use crate::history::{Op, OpKind, OpOutput, OpValue};
use crate::scenario::Scenario;
use phantomdb::codec;
use phantomdb::io::transport::SimTransport;
use phantomdb::io::{Inbound, Transport};
use phantomdb::keyspace::Keyspace;
use phantomdb::kv::{Command, KvStateMachine, Output};
use phantomdb::node::{ClientError, Wire, WIRE_BYTES_MAX};
use phantomdb::state_machine::StateMachine;
use phantomdb::{GroupId, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Sim node ids of clients start here (server ids are 1..=nodes).
pub const CLIENT_ID_BASE: NodeId = 1000;

pub enum CallOutcome {
    Done(Output),
    /// Never took effect.
    Failed,
    /// May or may not have taken effect.
    Unknown,
}

pub struct Client {
    pub name: String,
    transport: SimTransport,
    inbox: mpsc::Receiver<Inbound>,
    rng: ChaCha8Rng,
    nodes: u64,
    keyspace: Keyspace,
    /// Every node hosts every group (every initial voter is a replica of each range, and
    /// spares host them all): the client sends everything to one node, as a client of
    /// one server does. Otherwise it keeps a node per group, among its replicas.
    everywhere: bool,
    /// Where the next request goes: under group 0 while `everywhere`, else per group.
    targets: BTreeMap<GroupId, NodeId>,
    req_id: u64,
    timeout: Duration,
    start: Instant,
    history: Arc<Mutex<Vec<Op>>>,
}

impl Client {
    pub async fn connect(
        name: String,
        sim_id: NodeId,
        seed: u64,
        scenario: &Scenario,
        start: Instant,
        history: Arc<Mutex<Vec<Op>>>,
    ) -> Client {
        let (transport, inbox) = SimTransport::bind(sim_id).await.expect("client endpoint binds");
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ sim_id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let target = rng.gen_range(1..=scenario.nodes);
        Client {
            name,
            transport,
            inbox,
            rng,
            nodes: scenario.nodes,
            keyspace: scenario.keyspace(),
            everywhere: scenario.replication_factor == scenario.initial_voters,
            targets: BTreeMap::from([(0, target)]),
            req_id: 0,
            timeout: Duration::from_millis(scenario.request_timeout_ms),
            start,
            history,
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// The node `group`'s next request goes to. A group's first goes to any node, as
    /// from a client that has not learnt the placement yet: one that hosts no replica
    /// forwards it to one that does.
    fn target(&mut self, group: GroupId) -> NodeId {
        if self.everywhere {
            return self.targets[&0];
        }
        if let Some(&t) = self.targets.get(&group) {
            return t;
        }
        let any = self.rng.gen_range(1..=self.nodes);
        self.retarget(group, Some(any))
    }

    /// Sends `group`'s requests to `to`, or else to a node drawn at random (any node while
    /// every node hosts every group, else one of the group's replicas).
    fn retarget(&mut self, group: GroupId, to: Option<NodeId>) -> NodeId {
        let to = to.unwrap_or_else(|| {
            if self.everywhere {
                self.rng.gen_range(1..=self.nodes)
            } else {
                let replicas = &self.keyspace.descriptor(group).replicas;
                replicas[self.rng.gen_range(0..replicas.len())]
            }
        });
        self.targets.insert(if self.everywhere { 0 } else { group }, to);
        to
    }

    /// Runs one command against the cluster, following leader hints.
    pub async fn call(&mut self, command: &Command) -> CallOutcome {
        let deadline = Instant::now() + self.timeout;
        let encoded = KvStateMachine::encode(command);
        loop {
            // Routed again on every try: a `RangeMoved` may have taught a newer range.
            let group = self.keyspace.route(&command.keys()).expect("the workload's commands touch one key");
            self.req_id += 1;
            let wire = Wire::Request { group, req_id: self.req_id, command: encoded.clone() };
            let target = self.target(group);
            self.transport.send(target, codec::encode(&wire));
            let result = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(inbound) = tokio::time::timeout(left, self.inbox.recv()).await else {
                    self.retarget(group, None);
                    return CallOutcome::Unknown;
                };
                let Some(inbound) = inbound else {
                    return CallOutcome::Unknown;
                };
                match codec::decode::<Wire>(&inbound.payload, WIRE_BYTES_MAX) {
                    Ok(Wire::Reply { group: g, req_id, result }) if g == group && req_id == self.req_id => {
                        break result
                    }
                    _ => continue, // a late answer to an earlier call, or noise
                }
            };
            match result {
                Ok(bytes) => {
                    return match codec::decode::<Output>(&bytes, WIRE_BYTES_MAX) {
                        Ok(out) => CallOutcome::Done(out),
                        // It ran, with an answer we cannot read.
                        Err(_) => CallOutcome::Unknown,
                    };
                }
                Err(e) if e.is_definite() => {
                    match e {
                        ClientError::NotLeader { leader_hint: Some(l) } if l != target => {
                            self.retarget(group, Some(l));
                        }
                        // A split moved the key, or the node knows an older range than
                        // ours (it has not applied the split yet): ask another replica.
                        ClientError::RangeMoved { descriptor } => {
                            if !self.keyspace.learn(&descriptor) {
                                self.retarget(group, None);
                            }
                        }
                        _ => {
                            self.retarget(group, None);
                        }
                    }
                    let backoff = Duration::from_millis(self.rng.gen_range(5..=30));
                    if Instant::now() + backoff >= deadline {
                        return CallOutcome::Failed;
                    }
                    tokio::time::sleep(backoff).await;
                }
                Err(_) => {
                    self.retarget(group, None);
                    return CallOutcome::Unknown;
                }
            }
        }
    }

    /// Calls and records the operation in the history. Returns the outcome.
    pub async fn record(&mut self, kind: OpKind, key: &str, value: OpValue, command: Command) -> CallOutcome {
        let call = self.now_ns();
        let outcome = self.call(&command).await;
        let ret = self.now_ns();
        let (output, unknown) = match &outcome {
            CallOutcome::Done(out) => (Some(to_output(out)), false),
            CallOutcome::Unknown => (None, true),
            CallOutcome::Failed => return outcome,
        };
        let op = Op { client: self.name.clone(), op: kind, key: key.to_string(), value, output, call, ret, unknown };
        self.history.lock().expect("history lock").push(op);
        outcome
    }
}

fn text(v: &Option<Vec<u8>>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn to_output(out: &Output) -> OpOutput {
    match out {
        Output::Value(v) => OpOutput::Value(text(v)),
        // The workload's appends answer the new length; the checkers need only "ok".
        Output::Done | Output::Int(_) => OpOutput::Ok("ok"),
        Output::Cas { swapped, current } => OpOutput::Cas { swapped: *swapped, current: text(current) },
        Output::Written(_) | Output::Values(_) | Output::Failed(_) => {
            unreachable!("the workload issues no command that answers {out:?}")
        }
    }
}

/// The keys of a run: registers `r0..` and append-only lists `a0..`.
pub fn keys(scenario: &Scenario) -> (Vec<String>, Vec<String>) {
    let r = (0..scenario.register_keys).map(|i| format!("r{i}")).collect();
    let a = (0..scenario.append_keys).map(|i| format!("a{i}")).collect();
    (r, a)
}

/// One workload client: random operations with think time until `stop_at`.
pub async fn run_client(mut client: Client, index: u64, scenario: Scenario, stop_at: Instant) {
    let (registers, appends) = keys(&scenario);
    let all: Vec<String> = registers.iter().chain(appends.iter()).cloned().collect();
    let m = scenario.mix;
    let mut last_seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut seq = 0u64;
    let [think_lo, think_hi] = scenario.think_time_ms;
    while Instant::now() < stop_at {
        let think = client.rng.gen_range(think_lo..=think_hi);
        tokio::time::sleep(Duration::from_millis(think)).await;
        if Instant::now() >= stop_at {
            break;
        }
        seq += 1;
        let unique = format!("c{index}-{seq}");
        let total = m.get + m.put + m.append + m.delete + m.cas;
        let mut pick = client.rng.gen_range(0..total);
        let mut kind = OpKind::Get;
        for (k, w) in [
            (OpKind::Get, m.get),
            (OpKind::Put, m.put),
            (OpKind::Append, m.append),
            (OpKind::Delete, m.delete),
            (OpKind::Cas, m.cas),
        ] {
            if pick < w {
                kind = k;
                break;
            }
            pick -= w;
        }
        // Appends go to list keys, whole writes to registers; reads to either.
        if kind == OpKind::Append && appends.is_empty() {
            kind = OpKind::Put;
        }
        if matches!(kind, OpKind::Put | OpKind::Delete | OpKind::Cas) && registers.is_empty() {
            kind = OpKind::Append;
        }
        let pool = match kind {
            OpKind::Get => &all,
            OpKind::Append => &appends,
            _ => &registers,
        };
        let key = pool[client.rng.gen_range(0..pool.len())].clone();
        let k = key.clone().into_bytes();
        let (value, command) = match kind {
            OpKind::Get => (OpValue::None, Command::Get { key: k }),
            OpKind::Put => (OpValue::Value(unique.clone()), Command::Put { key: k, value: unique.into_bytes() }),
            OpKind::Append => {
                let token = format!("{unique};");
                (OpValue::Value(token.clone()), Command::Append { key: k, value: token.into_bytes() })
            }
            OpKind::Delete => (OpValue::None, Command::Delete { key: k }),
            OpKind::Cas => {
                let expected = last_seen.get(&key).cloned().flatten();
                (
                    OpValue::Cas { expected: expected.clone(), new: unique.clone() },
                    Command::Cas { key: k, expected: expected.map(String::into_bytes), new: unique.into_bytes() },
                )
            }
        };
        if let CallOutcome::Done(out) = client.record(kind, &key, value, command).await {
            match out {
                Output::Value(v) => {
                    last_seen.insert(key, text(&v));
                }
                Output::Cas { current, .. } => {
                    last_seen.insert(key, text(&current));
                }
                _ => {}
            }
        }
    }
}

/// The liveness probe: from the heal on, writes until one write is acknowledged.
/// Returns when it was (in ns since the start), or None by `give_up_at`.
pub async fn run_probe(mut client: Client, give_up_at: Instant) -> Option<u64> {
    let mut n = 0u64;
    let mut done_ns = None;
    // One key per group: each must take a write again.
    for key in probe_keys(&client.keyspace.clone()) {
        done_ns = None;
        while Instant::now() < give_up_at {
            n += 1;
            let value = format!("probe-{n}");
            let command = Command::Put { key: key.clone().into_bytes(), value: value.clone().into_bytes() };
            if let CallOutcome::Done(_) = client.record(OpKind::Put, &key, OpValue::Value(value), command).await {
                done_ns = Some(client.now_ns());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done_ns?;
    }
    done_ns
}

/// `probe` for a single group; otherwise the first `probe<i>` each group owns.
fn probe_keys(keyspace: &Keyspace) -> Vec<String> {
    if keyspace.user_ranges().len() == 1 {
        return vec!["probe".into()];
    }
    // Split points are text (scenario files hold strings), so range starts are too.
    keyspace.user_groups().map(|g| String::from_utf8(keyspace.key_in(g, "probe")).expect("text")).collect()
}

/// Reads every key once the workload has stopped, retrying until each read succeeds or
/// `give_up_at` passes.
pub async fn run_final_reads(mut client: Client, scenario: Scenario, give_up_at: Instant) {
    let (registers, appends) = keys(&scenario);
    for key in registers.iter().chain(appends.iter()) {
        while Instant::now() < give_up_at {
            let command = Command::Get { key: key.clone().into_bytes() };
            if let CallOutcome::Done(_) = client.record(OpKind::Get, key, OpValue::None, command).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
