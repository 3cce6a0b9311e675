//! Starts one node on real I/O from its [`NodeSettings`] and runs it until a shutdown
//! request: the shared body of `phantomdb node` and `phantomdb demo`.
//!
//! ```text
//!   lock DIR ─▶ open fjall (DIR/db) ─▶ TCP transport (peer-addr, cluster secret)
//!        ─▶ Node ─┬─ RESP server   (resp-addr)
//!                 └─ admin HTTP    (admin-addr)
//!   shutdown: stop accepting clients ─▶ the node finishes its batch and syncs ─▶ close
//! ```

use super::admin::{self, AdminState};
use super::config::{read_secret_file, NodeSettings, SECRET_BYTES_MIN};
use super::data_dir::DataDir;
use super::metrics::Metrics;
use super::resp::{self, ParseLimits, RespConfig};
use super::timed_storage::TimedStorage;
use crate::io::storage::FjallStorage;
use crate::io::transport::auth::ClusterSecret;
use crate::io::transport::TcpTransport;
use crate::io::SystemClock;
use crate::kv::COMMAND_BYTES_MAX;
use crate::node::{LogObserver, Node, NodeConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Arguments in one client request (`MSET` with many pairs, say).
const RESP_ARGS_MAX: usize = 64 * 1024;
/// Requests of one connection in flight at once.
const RESP_PIPELINE_MAX: usize = 1024;

/// Where a started node listens (the bound ports, useful with port 0).
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub peer: SocketAddr,
    pub resp: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

async fn listen(flag: &str, addr: Option<SocketAddr>) -> Result<Option<TcpListener>, String> {
    match addr {
        None => Ok(None),
        Some(a) => TcpListener::bind(a).await.map(Some).map_err(|e| format!("{flag} {a}: {e}")),
    }
}

/// Runs the node until `shutdown` completes (then stops cleanly) or it fails. `started`
/// hears the bound addresses once everything listens.
pub async fn run_node(
    s: NodeSettings,
    shutdown: impl Future<Output = ()>,
    started: impl FnOnce(Bound),
) -> Result<(), String> {
    let data_dir = DataDir::lock(&s.data_dir)?;
    let secret = match &s.cluster_secret_file {
        Some(path) => ClusterSecret::new(read_secret_file("--cluster-secret-file", path, SECRET_BYTES_MIN)?),
        None => {
            tracing::warn!("no --cluster-secret-file: any process that can reach --peer-addr can join as a peer");
            ClusterSecret::default()
        }
    };
    let password =
        s.resp_password_file.as_deref().map(|p| read_secret_file("--resp-password-file", p, 1)).transpose()?;
    let metrics = Arc::new(Metrics::new());
    let fjall =
        FjallStorage::open(&data_dir.db_path()).map_err(|e| format!("--data-dir {}: {e}", s.data_dir.display()))?;
    let storage = TimedStorage::new(fjall, metrics.clone());
    let resp_listener = listen("--resp-addr", s.resp_addr).await?;
    let admin_listener = listen("--admin-addr", s.admin_addr).await?;
    let (transport, inbox, peer) = TcpTransport::start(s.id, s.peer_addr, s.initial_cluster.clone(), secret)
        .await
        .map_err(|e| format!("--peer-addr {}: {e}", s.peer_addr))?;
    let peers = transport.health();
    // A fresh seed per process: forwarded-request ids must not repeat across restarts.
    let mut cfg = NodeConfig::new(s.id, s.initial_voters.clone(), rand::random());
    cfg.raft = s.raft_config();
    cfg.keyspace = s.keyspace.clone();
    cfg.sync_writes = s.sync_writes;
    cfg.request_timeout_ms = s.request_timeout_ms;
    cfg.snapshot_entries_min = s.snapshot_entries;
    cfg.split = s.split;
    cfg.placement = s.placement;
    cfg.node_dead_ms = s.node_dead_ms;
    let (node, handle) = Node::new(cfg, transport, inbox, storage, Arc::new(SystemClock::new()), Arc::new(LogObserver))
        .map_err(|e| e.to_string())?;
    let bound = Bound {
        peer,
        resp: resp_listener.as_ref().and_then(|l| l.local_addr().ok()),
        admin: admin_listener.as_ref().and_then(|l| l.local_addr().ok()),
    };
    let resp_task = resp_listener.map(|listener| {
        let cfg = RespConfig {
            limits: ParseLimits {
                bulk_bytes_max: s.max_value_bytes,
                args_max: RESP_ARGS_MAX,
                // What fits in one log entry: a request's RESP encoding is never smaller
                // than the command it becomes.
                request_bytes_max: COMMAND_BYTES_MAX - 1024,
            },
            clients_max: s.max_clients,
            pipeline_max: RESP_PIPELINE_MAX,
            password,
        };
        tokio::spawn(tracing::Instrument::in_current_span(resp::serve(listener, handle.clone(), cfg, metrics.clone())))
    });
    let admin_task = admin_listener.map(|listener| {
        let state =
            AdminState { node: handle.clone(), metrics: metrics.clone(), peers, members: s.initial_cluster.clone() };
        tokio::spawn(tracing::Instrument::in_current_span(admin::serve(listener, state)))
    });
    tracing::info!(
        peer_addr = %bound.peer,
        resp_addr = ?bound.resp,
        admin_addr = ?bound.admin,
        data_dir = %s.data_dir.display(),
        sync_writes = s.sync_writes,
        lease_reads = s.lease_reads,
        "node started"
    );
    started(bound);
    let stop_accepting = async {
        shutdown.await;
        tracing::info!("shutting down: no new clients; finishing the batch in hand");
        if let Some(t) = &resp_task {
            t.abort();
        }
    };
    let result = node.run_until(stop_accepting).await.map_err(|e| e.to_string());
    if let Some(t) = admin_task {
        t.abort();
    }
    if let Some(t) = resp_task {
        t.abort();
    }
    drop(data_dir);
    result
}
