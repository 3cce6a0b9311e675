//! The RESP listener: one task reads and parses a connection's requests, a second writes
//! the answers in request order, so a pipelining client (`redis-benchmark -P 16`) keeps
//! many commands in the log at once.
//!
//! ```text
//!   socket ─▶ reader: parse ─▶ Session ─▶ submit to node ─┐  bounded queue, in order
//!                                         (or an answer) ──┴─▶ writer: await, encode ─▶ socket
//! ```
//!
//! A malformed or oversized request gets its error after the answers before it, then the
//! connection closes; nothing else is affected.

use super::command::{KvRequest, Refusal, Request};
use super::parser::{ParseLimits, RequestParser};
use super::session::{failure_reply, Session, Step};
use super::{Protocol, Reply};
use crate::kv::KvStateMachine;
use crate::node::{NodeHandle, Submitted};
use crate::server::metrics::{Metrics, Outcome};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

#[derive(Clone, Debug)]
pub struct RespConfig {
    pub limits: ParseLimits,
    /// Open connections; one more is answered with an error and closed.
    pub clients_max: usize,
    /// Requests of one connection in flight before it is read no further.
    pub pipeline_max: usize,
    /// `requirepass`: when set, a connection must AUTH first.
    pub password: Option<Vec<u8>>,
}

/// An answer in the making, queued in request order.
/// An answer on its way, in the protocol the session spoke when the request was handled.
enum Pending {
    Ready {
        reply: Reply,
        protocol: Protocol,
        slot: usize,
        started: Instant,
        outcome: Outcome,
    },
    Waiting {
        submitted: Submitted<KvStateMachine>,
        request: KvRequest,
        protocol: Protocol,
        slot: usize,
        started: Instant,
    },
    /// Write and close.
    Last {
        reply: Reply,
        protocol: Protocol,
    },
}

/// Serves until `listener` fails for good or the task is aborted; each connection runs on
/// its own tasks.
pub async fn serve(listener: TcpListener, node: NodeHandle<KvStateMachine>, cfg: RespConfig, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(cfg.clients_max));
    let next_id = Arc::new(AtomicU64::new(1));
    loop {
        let (mut stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "RESP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.resp_connections_rejected.fetch_add(1, Relaxed);
            tracing::warn!(%remote, limit = cfg.clients_max, "RESP connection refused: client limit reached");
            tokio::spawn(async move {
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            });
            continue;
        };
        metrics.resp_connections_total.fetch_add(1, Relaxed);
        metrics.resp_connections_open.fetch_add(1, Relaxed);
        let (node, cfg, metrics) = (node.clone(), cfg.clone(), metrics.clone());
        let id = next_id.fetch_add(1, Relaxed);
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            connection(stream, remote, id, node, cfg, metrics.clone()).await;
            metrics.resp_connections_open.fetch_sub(1, Relaxed);
            drop(permit);
        }));
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    id: u64,
    node: NodeHandle<KvStateMachine>,
    cfg: RespConfig,
    m: Arc<Metrics>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(cfg.pipeline_max);
    let writer = tokio::spawn(tracing::Instrument::in_current_span(write_answers(wr, rx, m.clone())));
    let mut parser = RequestParser::new(cfg.limits);
    let mut session = Session::new(id, cfg.password.clone(), cfg.limits.bulk_bytes_max);
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        parser.extend(&buf[..n]);
        loop {
            let args = match parser.next_request() {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    m.resp_protocol_errors.fetch_add(1, Relaxed);
                    tracing::info!(%remote, error = %e, "closing RESP connection after bad input");
                    let last = Pending::Last { reply: Reply::err(e.to_string()), protocol: session.protocol() };
                    let _ = tx.send(last).await;
                    break 'read;
                }
            };
            let started = Instant::now();
            let slot = Metrics::slot(&String::from_utf8_lossy(&args[0]).to_ascii_lowercase());
            let pending = match Request::parse(args) {
                Err(Refusal(reply)) => {
                    Pending::Ready { reply, protocol: session.protocol(), slot, started, outcome: Outcome::Refused }
                }
                Ok(request) => {
                    let step = session.handle(request, &node.status());
                    let protocol = session.protocol();
                    match step {
                        Step::Reply(reply) => {
                            let outcome = if matches!(reply, Reply::Error(_)) { Outcome::Refused } else { Outcome::Ok };
                            Pending::Ready { reply, protocol, slot, started, outcome }
                        }
                        Step::ReplyAndClose(reply) => {
                            let _ = tx.send(Pending::Last { reply, protocol }).await;
                            break 'read;
                        }
                        Step::Run(request) => match node.submit(request.command()).await {
                            Ok(submitted) => Pending::Waiting { submitted, request, protocol, slot, started },
                            Err(e) => {
                                let (reply, outcome) = failure_reply(&e, request.is_read());
                                Pending::Ready { reply, protocol, slot, started, outcome }
                            }
                        },
                    }
                }
            };
            // A full queue holds the reader: the pipeline is bounded.
            if tx.send(pending).await.is_err() {
                break 'read;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_answers(mut wr: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Pending>, m: Arc<Metrics>) {
    let mut out = Vec::with_capacity(16 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut close = false;
        // Encode every answer that is ready, then write once.
        while let Some(pending) = next.take() {
            match pending {
                Pending::Ready { reply, protocol, slot, started, outcome } => {
                    m.record(slot, outcome, started.elapsed());
                    reply.encode(protocol, &mut out);
                }
                Pending::Waiting { submitted, request, protocol, slot, started } => {
                    let (reply, outcome) = match submitted.result().await {
                        Ok(output) => {
                            let reply = request.reply(output);
                            let outcome = if matches!(reply, Reply::Error(_)) { Outcome::Refused } else { Outcome::Ok };
                            (reply, outcome)
                        }
                        Err(e) => failure_reply(&e, request.is_read()),
                    };
                    m.record(slot, outcome, started.elapsed());
                    reply.encode(protocol, &mut out);
                }
                Pending::Last { reply, protocol } => {
                    reply.encode(protocol, &mut out);
                    close = true;
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        if close {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
