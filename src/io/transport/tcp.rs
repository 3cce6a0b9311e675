//! The real transport: one outbound TCP connection per peer (reconnected with exponential
//! backoff), and inbound connections that must prove the cluster secret before anything
//! they send is handed up (see [`super::auth`]).
//!
//! ```text
//!   send(to, payload) ─▶ SendQueues ─▶ TcpLink: connect, answer the challenge, then
//!                                  Frame{from, seal(payload)} ...
//!   accept ─▶ challenge ─▶ verify hello (known peer, right secret) ─▶ open each frame ─▶ inbox
//! ```

use super::auth::{self, ClusterSecret, Sealer, CHALLENGE_BYTES, NONCE_BYTES};
use super::send_queues::{Link, SendQueues};
use super::{Frame, FrameDecoder, Inbound, Transport, INBOX_FRAMES_MAX};
use crate::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const BACKOFF_MS_MIN: u64 = 10;
const BACKOFF_MS_MAX: u64 = 1000;
const CONNECT_TIMEOUT_MS: u64 = 1000;
/// An inbound connection must finish the handshake within this, or it is closed.
const HANDSHAKE_TIMEOUT_MS: u64 = 5000;

/// What the transport knows of its peers, for metrics and status.
#[derive(Debug)]
pub struct PeerHealth {
    connected: BTreeMap<NodeId, AtomicBool>,
    auth_failures: AtomicU64,
}

impl PeerHealth {
    /// Each peer with whether the outbound connection to it is up (handshake done).
    pub fn connected(&self) -> Vec<(NodeId, bool)> {
        self.connected.iter().map(|(&id, up)| (id, up.load(Relaxed))).collect()
    }

    /// Inbound connections refused: unknown sender, wrong secret or a forged frame.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Relaxed)
    }

    fn set(&self, peer: NodeId, up: bool) {
        if let Some(flag) = self.connected.get(&peer) {
            flag.store(up, Relaxed);
        }
    }
}

struct TcpLink {
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    secret: ClusterSecret,
    health: Arc<PeerHealth>,
    stream: Option<(TcpStream, Sealer)>,
    backoff_ms: u64,
}

impl TcpLink {
    async fn connect(&mut self) -> std::io::Result<&mut (TcpStream, Sealer)> {
        if self.stream.is_none() {
            let handshake = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), self.handshake()).await;
            let connected = match handshake {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(self.back_off(e).await),
                Err(_) => return Err(self.back_off(std::io::ErrorKind::TimedOut.into()).await),
            };
            self.backoff_ms = BACKOFF_MS_MIN;
            self.health.set(self.peer, true);
            self.stream = Some(connected);
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    async fn handshake(&self) -> std::io::Result<(TcpStream, Sealer)> {
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let mut challenge = [0u8; CHALLENGE_BYTES];
        stream.read_exact(&mut challenge).await?;
        let nonce_c: [u8; NONCE_BYTES] = rand::random();
        let (hello, sealer) = auth::answer(&self.secret, &challenge, nonce_c, self.me)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        stream.write_all(&Frame { from: self.me, payload: hello }.encode()).await?;
        Ok((stream, sealer))
    }

    /// Waits out the backoff (frames queued meanwhile pile up, bounded, and are dropped
    /// when the queue is full) and returns the error.
    async fn back_off(&mut self, e: std::io::Error) -> std::io::Error {
        self.health.set(self.peer, false);
        tokio::time::sleep(Duration::from_millis(self.backoff_ms)).await;
        self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MS_MAX);
        e
    }
}

impl Link for TcpLink {
    async fn deliver(&mut self, payload: Vec<u8>) -> std::io::Result<()> {
        let me = self.me;
        let (stream, sealer) = self.connect().await?;
        let frame = Frame { from: me, payload: sealer.seal(&payload) }.encode();
        if let Err(e) = stream.write_all(&frame).await {
            self.stream = None;
            self.health.set(self.peer, false);
            return Err(e);
        }
        Ok(())
    }
}

type MakeLink = Box<dyn Fn(NodeId) -> Option<TcpLink> + Send + Sync>;

/// Dropping the transport stops it: the accept loop is aborted (the listening port is
/// free again), outbound workers end with their queues, inbound readers when the inbox
/// is dropped.
pub struct TcpTransport {
    queues: SendQueues<MakeLink>,
    acceptor: tokio::task::JoinHandle<()>,
    health: Arc<PeerHealth>,
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl TcpTransport {
    /// Listens on `listen` and connects lazily to `peers` (which may list this node too;
    /// it is ignored). Only `peers` may connect, and only with `secret`. Returns the
    /// transport, the inbox and the address actually bound (useful with port 0).
    pub async fn start(
        id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        secret: ClusterSecret,
    ) -> std::io::Result<(Self, mpsc::Receiver<Inbound>, SocketAddr)> {
        Self::from_listener(id, TcpListener::bind(listen).await?, peers, secret)
    }

    /// Like [`TcpTransport::start`] on a listener bound already (so that a cluster on
    /// port 0 can learn every address before any node starts).
    pub fn from_listener(
        id: NodeId,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
        secret: ClusterSecret,
    ) -> std::io::Result<(Self, mpsc::Receiver<Inbound>, SocketAddr)> {
        let bound = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(INBOX_FRAMES_MAX);
        let health = Arc::new(PeerHealth {
            connected: peers.keys().filter(|&&p| p != id).map(|&p| (p, AtomicBool::new(false))).collect(),
            auth_failures: AtomicU64::new(0),
        });
        let known: Arc<Vec<NodeId>> = Arc::new(peers.keys().copied().filter(|&p| p != id).collect());
        let (accept_secret, accept_health) = (secret.clone(), health.clone());
        let acceptor = tokio::spawn(tracing::Instrument::in_current_span(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        let accepted = Accepted {
                            remote,
                            secret: accept_secret.clone(),
                            known: known.clone(),
                            health: accept_health.clone(),
                            inbox: tx.clone(),
                        };
                        tokio::spawn(tracing::Instrument::in_current_span(read_connection(stream, accepted)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(BACKOFF_MS_MIN)).await;
                    }
                }
            }
        }));
        let link_health = health.clone();
        let make: MakeLink = Box::new(move |to| {
            let addr = *peers.get(&to)?;
            Some(TcpLink {
                me: id,
                peer: to,
                addr,
                secret: secret.clone(),
                health: link_health.clone(),
                stream: None,
                backoff_ms: BACKOFF_MS_MIN,
            })
        });
        Ok((TcpTransport { queues: SendQueues::new(make), acceptor, health }, rx, bound))
    }

    pub fn health(&self) -> Arc<PeerHealth> {
        self.health.clone()
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: NodeId, payload: Vec<u8>) {
        self.queues.push(to, payload);
    }
}

/// What an inbound connection's reader needs.
struct Accepted {
    remote: SocketAddr,
    secret: ClusterSecret,
    known: Arc<Vec<NodeId>>,
    health: Arc<PeerHealth>,
    inbox: mpsc::Sender<Inbound>,
}

impl Accepted {
    fn refuse(&self, claimed: Option<NodeId>, why: &dyn std::fmt::Display) {
        self.health.auth_failures.fetch_add(1, Relaxed);
        tracing::warn!(remote = %self.remote, claimed_id = ?claimed, reason = %why, "peer refused");
    }
}

/// Reads one frame, waiting for more bytes as needed. `None`: the connection ended.
async fn next_frame(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Option<Result<Frame, String>> {
    loop {
        match decoder.next_frame() {
            Ok(Some(f)) => return Some(Ok(f)),
            Ok(None) => {}
            Err(e) => return Some(Err(e.to_string())),
        }
        let n = match stream.read(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        if let Err(e) = decoder.extend(&buf[..n]) {
            return Some(Err(e.to_string()));
        }
    }
}

/// Runs one inbound connection: challenge, verify, then hand up opened frames until it
/// closes or misbehaves. Nothing is handed up before the handshake succeeds.
async fn read_connection(mut stream: TcpStream, c: Accepted) {
    let _ = stream.set_nodelay(true);
    let nonce_a: [u8; NONCE_BYTES] = rand::random();
    if stream.write_all(&auth::challenge(nonce_a)).await.is_err() {
        return;
    }
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let hello = tokio::time::timeout(
        Duration::from_millis(HANDSHAKE_TIMEOUT_MS),
        next_frame(&mut stream, &mut decoder, &mut buf),
    )
    .await;
    let hello = match hello {
        Err(_) => return c.refuse(None, &"no handshake in time"),
        Ok(None) => return,
        Ok(Some(Err(e))) => return c.refuse(None, &e),
        Ok(Some(Ok(f))) => f,
    };
    let peer = hello.from;
    if !c.known.contains(&peer) {
        return c.refuse(Some(peer), &"not a member of the cluster");
    }
    let mut opener = match auth::verify(&c.secret, &nonce_a, peer, &hello.payload) {
        Ok(o) => o,
        Err(e) => return c.refuse(Some(peer), &e),
    };
    while let Some(frame) = next_frame(&mut stream, &mut decoder, &mut buf).await {
        let frame = match frame {
            Ok(f) if f.from == peer => f,
            Ok(f) => return c.refuse(Some(f.from), &format!("sender changed mid-connection from {peer}")),
            Err(e) => {
                tracing::warn!(remote = %c.remote, peer, error = %e, "closing peer connection after a bad frame");
                return;
            }
        };
        let payload = match opener.open(frame.payload) {
            Ok(p) => p,
            Err(e) => return c.refuse(Some(peer), &e),
        };
        // Back-pressure a fast peer instead of dropping: TCP has flow control.
        if c.inbox.send(Inbound { from: peer, payload }).await.is_err() {
            return;
        }
    }
}
