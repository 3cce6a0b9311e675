//! The real transport: one outbound TCP connection per peer (reconnected with exponential
//! backoff), and inbound connections whose first frame names the sender.
//! Peer authentication with the cluster secret arrives with issue 4.

use super::outbox::{Link, Outbox};
use super::{Frame, FrameDecoder, Inbound, Transport, INBOX_FRAMES_MAX};
use crate::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const BACKOFF_MS_MIN: u64 = 10;
const BACKOFF_MS_MAX: u64 = 1000;
const CONNECT_TIMEOUT_MS: u64 = 1000;

struct TcpLink {
    me: NodeId,
    addr: SocketAddr,
    stream: Option<TcpStream>,
    backoff_ms: u64,
}

impl TcpLink {
    async fn connect(&mut self) -> std::io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let connect = TcpStream::connect(self.addr);
            let result = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect).await;
            let mut stream = match result {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(self.back_off(e).await),
                Err(_) => return Err(self.back_off(std::io::ErrorKind::TimedOut.into()).await),
            };
            stream.set_nodelay(true)?;
            // The hello frame: an empty payload that names us.
            stream.write_all(&Frame { from: self.me, payload: vec![] }.encode()).await?;
            self.backoff_ms = BACKOFF_MS_MIN;
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Waits out the backoff (frames queued meanwhile pile up, bounded, and are dropped
    /// when the queue is full) and returns the error.
    async fn back_off(&mut self, e: std::io::Error) -> std::io::Error {
        tokio::time::sleep(Duration::from_millis(self.backoff_ms)).await;
        self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MS_MAX);
        e
    }
}

impl Link for TcpLink {
    async fn deliver(&mut self, frame: Vec<u8>) -> std::io::Result<()> {
        let stream = self.connect().await?;
        if let Err(e) = stream.write_all(&frame).await {
            self.stream = None;
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
    id: NodeId,
    outbox: Outbox<MakeLink>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl TcpTransport {
    /// Listens on `listen` and connects lazily to `peers`. Returns the transport, the inbox
    /// and the address actually bound (useful with port 0).
    pub async fn start(
        id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> std::io::Result<(Self, mpsc::Receiver<Inbound>, SocketAddr)> {
        Self::from_listener(id, TcpListener::bind(listen).await?, peers)
    }

    /// Like [`TcpTransport::start`] on a listener bound already (so that a cluster on
    /// port 0 can learn every address before any node starts).
    pub fn from_listener(
        id: NodeId,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> std::io::Result<(Self, mpsc::Receiver<Inbound>, SocketAddr)> {
        let bound = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(INBOX_FRAMES_MAX);
        let acceptor = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => {
                        tokio::spawn(read_connection(stream, remote, tx.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(BACKOFF_MS_MIN)).await;
                    }
                }
            }
        });
        let make: MakeLink = Box::new(move |to| {
            peers.get(&to).map(|&addr| TcpLink { me: id, addr, stream: None, backoff_ms: BACKOFF_MS_MIN })
        });
        Ok((TcpTransport { id, outbox: Outbox::new(make), acceptor }, rx, bound))
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: NodeId, payload: Vec<u8>) {
        self.outbox.push(to, Frame { from: self.id, payload }.encode());
    }
}

/// Reads frames from one inbound connection until it closes or misbehaves. Every frame must
/// name the sender its hello frame named.
async fn read_connection(mut stream: TcpStream, remote: SocketAddr, inbox: mpsc::Sender<Inbound>) {
    let _ = stream.set_nodelay(true);
    let mut decoder = FrameDecoder::default();
    let mut peer: Option<NodeId> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Err(e) = decoder.extend(&buf[..n]) {
            tracing::warn!(%remote, error = %e, "closing connection after a bad frame");
            return;
        }
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "closing connection after a bad frame");
                    return;
                }
            };
            match peer {
                None => peer = Some(frame.from),
                Some(p) if p != frame.from => {
                    tracing::warn!(%remote, named = p, claimed = frame.from, "sender changed mid-connection");
                    return;
                }
                Some(_) => {
                    // Back-pressure a fast peer instead of dropping: TCP has flow control.
                    if inbox.send(Inbound { from: frame.from, payload: frame.payload }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
