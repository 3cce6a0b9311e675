//! A resolved scenario written back as a file that pins everything: every cluster,
//! network, workload and phase value, buggify and its armed sites, and each fault as an
//! explicit `[[faults]]` entry (timed, or at a moment), with no nemesis. Resolving the
//! written file with the same seed gives the same scenario again, so it replays the same
//! run (trace hash included). The shrinker writes its result this way.
//!
//! Contract: `resolve(parse(explicit(s)), s.seed)` equals `s` in every field but `path`,
//! `name`, `require_marks` and the faults' `origin` (checked over the standard scenarios
//! by a unit test below).

use super::{Scenario, Scheduled};
use crate::faults::trigger::Trigger;
use crate::faults::{clock, disk, link, network, operator, process, Action, Target};
use std::fmt::Write;
use toml::Value;

/// The file text of `s`; `header` becomes its leading comment (one `#` line each).
pub fn explicit(s: &Scenario, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let mut top = vec![
        ("name", text(&s.name)),
        ("buggify", Value::Boolean(s.buggify)),
        ("require_balance", Value::Boolean(s.require_balance)),
    ];
    if let Some(bug) = s.planted_bug {
        top.push(("planted_bug", text(bug.name())));
    }
    if s.buggify {
        top.push(("buggify_sites", Value::Array(s.buggify_armed.iter().map(|a| text(a)).collect())));
    }
    table(&mut out, None, &top);
    let mut cluster = vec![("nodes", int(s.nodes)), ("groups", int(s.groups)), ("sharding", text(s.sharding.name()))];
    if s.sharding == phantomdb::keyspace::Sharding::Range {
        cluster.push(("split_points", Value::Array(s.split_points.iter().map(|p| text(p)).collect())));
    }
    cluster.push(("replication_factor", int(s.replication_factor)));
    cluster.push(("range_bytes_max", int(s.range_bytes_max)));
    cluster.push(("range_ops_per_s_max", int(s.range_ops_per_s_max)));
    cluster.extend([
        ("voters", int(s.initial_voters)),
        ("added_nodes", int(s.added_nodes)),
        ("placement", Value::Boolean(s.placement)),
        ("node_dead_ms", int(s.node_dead_ms)),
        ("election_timeout_ms", pair(s.election_timeout_ms)),
        ("heartbeat_interval_ms", int(s.heartbeat_interval_ms)),
        ("append_entries_max", int(s.append_entries_max as u64)),
        ("pre_vote", Value::Boolean(s.pre_vote)),
        ("check_quorum", Value::Boolean(s.check_quorum)),
        ("lease_reads", Value::Boolean(s.lease_reads)),
        ("clock_drift_ppm_max", int(s.clock_drift_ppm_max)),
        ("snapshot_entries", int(s.snapshot_entries)),
        ("snapshot_chunk_bytes", int(s.snapshot_chunk_bytes as u64)),
        // `[0, 0]` is the file's way to say syncs take no time.
        ("disk_sync_ms", pair(s.disk_sync_ms.unwrap_or([0, 0]))),
    ]);
    table(&mut out, Some("cluster"), &cluster);
    table(
        &mut out,
        Some("network"),
        &[("latency_ms", pair(s.latency_ms)), ("loss", Value::Float(s.loss)), ("duplicate", Value::Float(s.duplicate))],
    );
    let m = &s.mix;
    let mut mix = toml::map::Map::new();
    for (k, v) in [("get", m.get), ("put", m.put), ("append", m.append), ("delete", m.delete), ("cas", m.cas)] {
        mix.insert(k.into(), int(u64::from(v)));
    }
    table(
        &mut out,
        Some("workload"),
        &[
            ("clients", int(s.clients)),
            ("register_keys", int(s.register_keys)),
            ("append_keys", int(s.append_keys)),
            ("mix", Value::Table(mix)),
            ("think_time_ms", pair(s.think_time_ms)),
            ("request_timeout_ms", int(s.request_timeout_ms)),
        ],
    );
    for f in &s.schedule {
        timed(&mut out, f);
    }
    for t in &s.triggers {
        at_moment(&mut out, t);
    }
    table(
        &mut out,
        Some("phases"),
        &[
            ("faulty_ms", int(s.faulty_ms)),
            ("healed_ms", int(s.healed_ms)),
            ("liveness_timeout_ms", int(s.liveness_timeout_ms)),
        ],
    );
    out
}

fn timed(out: &mut String, f: &Scheduled) {
    let mut fields = vec![("at_ms", int(f.at_ms))];
    fields.extend(action_fields(&f.action));
    let _ = writeln!(out, "\n[[faults]]");
    table(out, None, &fields);
}

fn at_moment(out: &mut String, t: &Trigger) {
    let mut fields = vec![("on", text(t.on.name())), ("at_ms", int(t.from_ms)), ("delay_ms", pair(t.delay_ms))];
    fields.push(("times", int(u64::from(t.times))));
    if let Some(undo) = t.undo_after_ms {
        fields.push(("undo_after_ms", pair(undo)));
    }
    fields.extend(action_fields(&t.action));
    let _ = writeln!(out, "\n[[faults]]");
    table(out, None, &fields);
}

/// `kind` and the spec fields that resolve to exactly `action`.
fn action_fields(action: &Action) -> Vec<(&'static str, Value)> {
    let kind = |k: &str| ("kind", text(k));
    let node = |t: &Target| ("node", target(t));
    match action {
        Action::Network(a) => match a {
            network::Action::Partition { sides } => vec![
                kind("partition"),
                (
                    "sides",
                    Value::Array(
                        sides.iter().map(|side| Value::Array(side.iter().map(|&n| int(n)).collect())).collect(),
                    ),
                ),
            ],
            network::Action::Isolate { node: t } => vec![kind("isolate"), node(t)],
            network::Action::Heal => vec![kind("heal")],
            network::Action::Clog { from, to } => vec![kind("clog"), ("from", int(*from)), ("to", int(*to))],
            network::Action::Unclog { from, to } => vec![kind("unclog"), ("from", int(*from)), ("to", int(*to))],
        },
        Action::Link(a) => {
            let (k, field, value) = match a {
                link::Action::Loss { rate } => ("loss", "rate", rate.map(Value::Float)),
                link::Action::Duplicate { rate } => ("duplicate", "rate", rate.map(Value::Float)),
                link::Action::Latency { ms } => ("latency", "latency_ms", ms.map(pair)),
            };
            // Without its value, the fault sets the link back to the scenario's.
            let mut v = vec![kind(k)];
            v.extend(value.map(|value| (field, value)));
            v
        }
        Action::Process(a) => match a {
            process::Action::Crash { node: t } => vec![kind("crash"), node(t)],
            process::Action::Restart { node: t } => vec![kind("restart"), node(t)],
            process::Action::AddNode { node: t } => {
                let mut v = vec![kind("add_node")];
                v.extend(t.as_ref().map(node));
                v
            }
        },
        Action::Clock(clock::Action::ClockSkew { node: t, offset_ms, drift_ppm }) => vec![
            kind("clock_skew"),
            node(t),
            ("offset_ms", Value::Integer(*offset_ms)),
            ("drift_ppm", Value::Integer(*drift_ppm)),
        ],
        Action::Disk(a) => match a {
            disk::Action::DiskError { node: t } => vec![kind("disk_error"), node(t)],
            disk::Action::ReadError { node: t } => vec![kind("read_error"), node(t)],
            disk::Action::Corrupt { node: t } => vec![kind("corrupt"), node(t)],
            disk::Action::SlowDisk { node: t, sync_ms } => {
                let mut v = vec![kind("slow_disk"), node(t)];
                v.extend(sync_ms.map(|ms| ("latency_ms", pair(ms))));
                v
            }
        },
        Action::Operator(a) => match a {
            operator::Action::TransferLeader { to } => vec![kind("transfer_leader"), node(to)],
            operator::Action::AddVoter { node: t } => vec![kind("add_voter"), node(t)],
            operator::Action::RemoveVoter { node: t } => vec![kind("remove_voter"), node(t)],
            operator::Action::AddLearner { node: t } => vec![kind("add_learner"), node(t)],
            operator::Action::SetVoters { voters } => {
                vec![kind("set_voters"), ("voters", Value::Array(voters.iter().map(|&n| int(n)).collect()))]
            }
            operator::Action::Split { key } => {
                let mut v = vec![kind("split")];
                v.extend(key.clone().map(|k| ("key", text(&k))));
                v
            }
            operator::Action::Move { key, from, to } => {
                let mut v = vec![kind("move")];
                v.extend(key.clone().map(|k| ("key", text(&k))));
                v.extend(from.map(|n| ("from", int(n))));
                v.extend(to.map(|n| ("to", int(n))));
                v
            }
        },
    }
}

fn target(t: &Target) -> Value {
    match t {
        Target::Node(n) => int(*n),
        Target::Leader => text("leader"),
        Target::Follower => text("follower"),
        Target::That => text("that"),
        Target::Other => text("other"),
    }
}

fn table(out: &mut String, name: Option<&str>, fields: &[(&str, Value)]) {
    if let Some(name) = name {
        let _ = writeln!(out, "\n[{name}]");
    }
    for (k, v) in fields {
        let _ = writeln!(out, "{k} = {v}");
    }
}

fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).expect("scenario values are validated far below i64::MAX"))
}

fn pair([a, b]: [u64; 2]) -> Value {
    Value::Array(vec![int(a), int(b)])
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load, parse};
    use std::path::Path;

    /// Everything the run depends on: the scenario as JSON without the fields that only
    /// name or describe it.
    fn essence(s: &Scenario) -> serde_json::Value {
        let mut v = serde_json::to_value(s).expect("scenarios serialize");
        let o = v.as_object_mut().expect("an object");
        for k in ["path", "name", "require_marks"] {
            o.remove(k);
        }
        for list in ["schedule", "triggers"] {
            for f in o[list].as_array_mut().expect("a list") {
                f.as_object_mut().expect("an object").remove("origin");
            }
        }
        v
    }

    #[test]
    fn every_standard_scenario_resolves_again_to_itself_from_its_explicit_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut files = crate::dir::files_with_extension(&dir, "toml").expect("scenarios/");
        files.extend(crate::dir::files_with_extension(&dir.join("bugs"), "toml").expect("scenarios/bugs/"));
        assert!(files.len() > 10, "{files:?}");
        for path in files {
            let file = load(&path).unwrap_or_else(|e| panic!("{e}"));
            for seed in 1..=20 {
                let s = Scenario::resolve(&path, &file, seed);
                let text = explicit(&s, "test");
                let again = parse(Path::new("explicit.toml"), &text)
                    .unwrap_or_else(|e| panic!("{} seed {seed}: {e}\n{text}", path.display()));
                assert!(again.nemesis.is_none());
                let r = Scenario::resolve(&path, &again, seed);
                assert_eq!(essence(&r), essence(&s), "{} seed {seed}:\n{text}", path.display());
            }
        }
    }

    #[test]
    fn the_header_and_a_back_to_the_scenario_undo_are_written() {
        let text = "[[faults]]\nat_ms = 5\nkind = \"loss\"\nrate = 0.25\n\n[[faults]]\nat_ms = 9\nkind = \"loss\"\n";
        let s = Scenario::resolve(Path::new("t.toml"), &parse(Path::new("t.toml"), text).unwrap(), 3);
        assert_eq!(s.schedule[1].action, link::Action::Loss { rate: None }.into());
        let written = explicit(&s, "shrunk from t.toml\nseed 3");
        assert!(written.starts_with("# shrunk from t.toml\n# seed 3\n"), "{written}");
        assert!(written.contains("at_ms = 9\nkind = \"loss\"\n"), "{written}");
    }
}
