//! The admin HTTP endpoint: `GET /health`, `/metrics` (Prometheus text), `/status` (JSON),
//! `/ranges` (JSON: every range as this node knows it, its replicas, and its group where
//! hosted here), `POST /ranges/split?key=K` (on the leader of the range holding user key
//! `K`, percent-encoded: split it before `K`), `POST /ranges/move?range=R&from=N&to=M` (on
//! the leader of range `R`: move its replica on follower `N`, by default the lowest-numbered
//! one, to node `M`, which hosts none), `POST /transfer-leader?to=N` (on the leader:
//! hand leadership to node N) and `POST /membership?voters=1,2,4&learners=5` (on the
//! leader: change the configuration, by joint consensus; every node named must be in
//! `--initial-cluster`).
//!
//! A deliberately small HTTP/1.1 server: one request per connection, no request bodies,
//! the request head bounded in size and time, `Connection: close` on every answer. It
//! serves operators and scrapers, not traffic.

use super::metrics::Metrics;
use crate::io::transport::PeerHealth;
use crate::keyspace::{Keyspace, Sharding};
use crate::kv::KvStateMachine;
use crate::node::{NodeHandle, NodeStatus};
use crate::{GroupId, NodeId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The group operators' requests act on: a real node hosts one group until ranges come.
const GROUP: GroupId = 1;

const HEAD_BYTES_MAX: usize = 8 * 1024;
const HEAD_TIMEOUT_MS: u64 = 5_000;
const CONNECTIONS_MAX: usize = 64;

/// What the endpoint reads from.
#[derive(Clone)]
pub struct AdminState {
    pub node: NodeHandle<KvStateMachine>,
    pub metrics: Arc<Metrics>,
    pub peers: Arc<PeerHealth>,
    /// Every member's peer address, as configured.
    pub members: BTreeMap<NodeId, SocketAddr>,
}

/// A range as `/ranges` lists it: its descriptor, and what this node knows of its group
/// where it hosts a replica.
#[derive(Serialize)]
struct RangeView {
    id: GroupId,
    /// The meta range (the system span, holding the directory of ranges).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    meta: bool,
    generation: u64,
    /// Hash sharding: the slots `first-last`; range sharding: the keys `start <= k < end`
    /// (escaped; no `end`: to the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    replicas: Vec<NodeId>,
    hosted_here: bool,
    leader: Option<NodeId>,
    term: Option<u64>,
    applied_index: Option<u64>,
    keys: Option<u64>,
    /// The bytes of its keys and values here (what `--range-bytes-max` weighs).
    bytes: Option<u64>,
    /// Requests a second its leader took in the last full second (on the leader only).
    ops_per_s: Option<u64>,
    /// Its data here was dropped as corrupt and is being fetched from a peer.
    rebuilding: Option<bool>,
    /// Splits this replica applied since the process started.
    splits: Option<u64>,
}

fn ranges_view(keyspace: &Keyspace, statuses: &[NodeStatus]) -> Vec<RangeView> {
    views(keyspace.sharding(), keyspace.ranges(), statuses)
}

/// The directory of ranges (`GET /directory`): the ranges it tiles the key space with, and
/// those reported that wait for their neighbours.
#[derive(Serialize)]
struct DirectoryView {
    ranges: Vec<RangeView>,
    pending: Vec<RangeView>,
}

fn views(sharding: Sharding, ranges: &[crate::keyspace::RangeDescriptor], statuses: &[NodeStatus]) -> Vec<RangeView> {
    use crate::keyspace::{META_RANGE, SLOTS, SYSTEM_START};
    // A bound of the user ranges is a slot, but for the system span's start (after them all).
    let slot = |bound: Option<&[u8]>| match bound {
        Some(b) if b < SYSTEM_START => u16::from_be_bytes([b[0], b[1]]),
        _ => SLOTS,
    };
    ranges
        .iter()
        .map(|r| {
            let here = statuses.iter().find(|s| s.group == r.id);
            let (slots, start, end) = match sharding {
                Sharding::Hash if r.id != META_RANGE => {
                    let last = slot(r.end.as_deref()) - 1;
                    (Some(format!("{}-{last}", slot(Some(&r.start)))), None, None)
                }
                // The meta range's span is stored keys, not slots: shown as keys.
                Sharding::Hash | Sharding::Range => {
                    let text = |b: &[u8]| b.escape_ascii().to_string();
                    (None, Some(text(&r.start)), r.end.as_deref().map(text))
                }
            };
            RangeView {
                id: r.id,
                meta: r.id == META_RANGE,
                generation: r.generation,
                slots,
                start,
                end,
                replicas: r.replicas.clone(),
                hosted_here: here.is_some(),
                leader: here.and_then(|s| s.leader),
                term: here.map(|s| s.term),
                applied_index: here.map(|s| s.applied_index),
                keys: here.map(|s| s.keys),
                bytes: here.map(|s| s.bytes),
                ops_per_s: here.filter(|s| s.role == "leader").map(|s| s.ops_per_s),
                rebuilding: here.map(|s| s.rebuilding),
                splits: here.map(|s| s.splits),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct Status<'a> {
    #[serde(flatten)]
    node: &'a NodeStatus,
    members: Vec<Member>,
}

#[derive(Serialize)]
struct Member {
    id: NodeId,
    peer_addr: SocketAddr,
    /// Our outbound connection to it (always true for ourselves).
    connected: bool,
}

pub async fn serve(listener: TcpListener, state: AdminState) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Over the limit, the connection is dropped unanswered: a scraper retries.
        let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(HEAD_TIMEOUT_MS), answer(stream, &state)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, state: &AdminState) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > HEAD_BYTES_MAX {
            return respond(&mut stream, 431, "text/plain", "request head too large\n", false).await;
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let head_only = method == "HEAD";
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method == "POST" && path == "/transfer-leader" {
        return transfer_leader(&mut stream, state, query).await;
    }
    if method == "POST" && path == "/membership" {
        return change_membership(&mut stream, state, query).await;
    }
    if method == "POST" && path == "/ranges/split" {
        return split(&mut stream, state, query).await;
    }
    if method == "POST" && path == "/ranges/move" {
        return move_replica(&mut stream, state, query).await;
    }
    if method != "GET" && !head_only {
        let allowed = "GET or HEAD (POST only for /transfer-leader, /membership, /ranges/split and /ranges/move)\n";
        return respond(&mut stream, 405, "text/plain", allowed, head_only).await;
    }
    let status = state.node.status();
    match path {
        "/health" => {
            let body =
                serde_json::json!({ "status": "ok", "node": status.id, "role": status.role, "leader": status.leader });
            respond(&mut stream, 200, "application/json", &format!("{body}\n"), head_only).await
        }
        "/metrics" => {
            let mut body = state.metrics.render(&status, Some((state.peers.connected(), state.peers.auth_failures())));
            body += &super::metrics::render_ranges(state.node.range_map().ranges().len(), &state.node.group_statuses());
            respond(&mut stream, 200, "text/plain; version=0.0.4", &body, head_only).await
        }
        "/status" => {
            let connected: BTreeMap<NodeId, bool> = state.peers.connected().into_iter().collect();
            let members = state
                .members
                .iter()
                .map(|(&id, &peer_addr)| Member {
                    id,
                    peer_addr,
                    connected: id == status.id || connected.get(&id) == Some(&true),
                })
                .collect();
            let body = serde_json::to_string_pretty(&Status { node: &status, members }).expect("status serializes");
            respond(&mut stream, 200, "application/json", &format!("{body}\n"), head_only).await
        }
        "/ranges" => {
            let view = ranges_view(&state.node.range_map(), &state.node.group_statuses());
            let body = serde_json::to_string_pretty(&view).expect("ranges serialize");
            respond(&mut stream, 200, "application/json", &format!("{body}\n"), head_only).await
        }
        "/directory" => match state.node.directory().await {
            Ok(directory) => {
                let sharding = state.node.range_map().sharding();
                let statuses = state.node.group_statuses();
                let view = DirectoryView {
                    ranges: views(sharding, directory.ranges(), &statuses),
                    pending: views(sharding, directory.pending(), &statuses),
                };
                let body = serde_json::to_string_pretty(&view).expect("the directory serializes");
                respond(&mut stream, 200, "application/json", &format!("{body}\n"), head_only).await
            }
            Err(e) => {
                let meta = state.node.range_map().find(crate::keyspace::META_RANGE).map(|r| r.replicas.clone());
                let body = format!("{e}; the meta range is on {meta:?}\n");
                respond(&mut stream, 409, "text/plain", &body, head_only).await
            }
        },
        _ => {
            let hint = "not found; try /health, /metrics, /status, /ranges or /directory\n";
            respond(&mut stream, 404, "text/plain", hint, head_only).await
        }
    }
}

async fn change_membership(stream: &mut TcpStream, state: &AdminState, query: &str) -> std::io::Result<()> {
    let field = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
    let ids = |list: Option<&str>| -> Result<std::collections::BTreeSet<NodeId>, String> {
        match list {
            None | Some("") => Ok(Default::default()),
            Some(l) => Ok(super::config::parse_ids("membership", l, &state.members)?.into_iter().collect()),
        }
    };
    let parsed = field("voters").ok_or_else(|| "expected ?voters=1,2,3[&learners=4]".to_string()).and_then(|v| {
        let voters = ids(Some(v))?;
        Ok((voters, ids(field("learners"))?))
    });
    let (voters, learners) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let body = serde_json::json!({ "error": e });
            return respond(stream, 400, "application/json", &format!("{body}\n"), false).await;
        }
    };
    match state.node.change_membership(GROUP, voters.clone(), learners.clone()).await {
        Ok(()) => {
            let body = serde_json::json!({ "changing_to": { "voters": voters, "learners": learners } });
            respond(stream, 200, "application/json", &format!("{body}\n"), false).await
        }
        Err(e) => {
            let body = serde_json::json!({ "error": e.to_string() });
            respond(stream, 409, "application/json", &format!("{body}\n"), false).await
        }
    }
}

async fn split(stream: &mut TcpStream, state: &AdminState, query: &str) -> std::io::Result<()> {
    let key = query.split('&').find_map(|kv| kv.strip_prefix("key=")).map(percent_decode);
    let key = match key {
        Some(Ok(k)) if !k.is_empty() => k,
        Some(Err(e)) => return respond(stream, 400, "application/json", &json_error(&e), false).await,
        _ => return respond(stream, 400, "application/json", &json_error("expected ?key=KEY"), false).await,
    };
    match state.node.split_range(key.clone()).await {
        Ok(range) => {
            let body = serde_json::json!({ "splitting": range, "before": key.escape_ascii().to_string() });
            respond(stream, 200, "application/json", &format!("{body}\n"), false).await
        }
        Err(e) => respond(stream, 409, "application/json", &json_error(&e.to_string()), false).await,
    }
}

async fn move_replica(stream: &mut TcpStream, state: &AdminState, query: &str) -> std::io::Result<()> {
    let field = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
    let id = |name: &str| -> Result<Option<u64>, String> {
        field(name).map(|v| v.parse::<u64>().map_err(|_| format!("{name}={v:?}: expected a number"))).transpose()
    };
    let parsed = (|| {
        let usage = "expected ?range=RANGE_ID&to=NODE_ID[&from=NODE_ID]";
        let range = id("range")?.ok_or(usage)?;
        let to = id("to")?.ok_or(usage)?;
        let from = id("from")?;
        for node in [Some(to), from].into_iter().flatten() {
            if !state.members.contains_key(&node) {
                return Err(format!("node {node} is not in --initial-cluster"));
            }
        }
        Ok::<_, String>((range, from, to))
    })();
    let (range, from, to) = match parsed {
        Ok(p) => p,
        Err(e) => return respond(stream, 400, "application/json", &json_error(&e), false).await,
    };
    match state.node.move_replica(range, from, to).await {
        Ok(from) => {
            let body = serde_json::json!({ "moving": range, "from": from, "to": to });
            respond(stream, 200, "application/json", &format!("{body}\n"), false).await
        }
        Err(e) => respond(stream, 409, "application/json", &json_error(&e.to_string()), false).await,
    }
}

fn json_error(e: &str) -> String {
    format!("{}\n", serde_json::json!({ "error": e }))
}

/// `%XX` escapes and `+` (a space) of a query value, as bytes.
fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(byte.ok_or_else(|| format!("bad escape at byte {i} of {text:?}"))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

async fn transfer_leader(stream: &mut TcpStream, state: &AdminState, query: &str) -> std::io::Result<()> {
    let to = query.split('&').find_map(|kv| kv.strip_prefix("to=")).and_then(|v| v.parse::<NodeId>().ok());
    let Some(to) = to else {
        return respond(stream, 400, "application/json", "{\"error\":\"expected ?to=NODE_ID\"}\n", false).await;
    };
    match state.node.transfer_leadership(GROUP, to).await {
        Ok(()) => {
            let body = serde_json::json!({ "transferring_to": to });
            respond(stream, 200, "application/json", &format!("{body}\n"), false).await
        }
        Err(e) => {
            let body = serde_json::json!({ "error": e.to_string() });
            respond(stream, 409, "application/json", &format!("{body}\n"), false).await
        }
    }
}

async fn respond(stream: &mut TcpStream, code: u16, kind: &str, body: &str, head_only: bool) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}
