//! The simulated transport: frames travel as madsim datagrams, so madsim's latency, loss,
//! clogged links and partitions apply to them, and the frame encoding and checksum are
//! exercised in every simulation. madsim never duplicates a datagram; this transport can
//! ([`set_duplicate_rate`]): the copy travels on its own, so it may also arrive reordered.

use super::send_queues::{Link, SendQueues};
use super::{Frame, Inbound, Transport, INBOX_FRAMES_MAX};
use crate::NodeId;
use madsim::net::Endpoint;
use madsim::rand::Rng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

const TAG: u64 = 0x5048_414e; // "PHAN"
const PORT: u16 = 7000;

/// The simulated address of node `id`: 10.x.y.z, one per node id.
pub fn sim_addr(id: NodeId) -> SocketAddr {
    assert!(id > 0 && id < (1 << 24), "sim node ids fit in 24 bits");
    let ip = Ipv4Addr::new(10, (id >> 16) as u8, (id >> 8) as u8, id as u8);
    SocketAddr::new(IpAddr::V4(ip), PORT)
}

/// Share of frames sent twice, in millionths (for the whole simulated world).
static DUPLICATE_PPM: AtomicU32 = AtomicU32::new(0);

/// Frames handed to every simulated transport of this process (for `cargo sim bench`).
static FRAMES_SENT: AtomicU64 = AtomicU64::new(0);

/// How many frames every simulated transport of this process has been given to send:
/// the bench's measure of a scenario's traffic (it reads the count before and after).
pub fn frames_sent() -> u64 {
    FRAMES_SENT.load(Ordering::Relaxed)
}

/// Sends each frame twice with probability `rate` (0.0 to 1.0), drawn from the
/// simulation's seeded randomness. The world sets it at the start of every run.
pub fn set_duplicate_rate(rate: f64) {
    DUPLICATE_PPM.store((rate.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
}

struct SimLink {
    ep: Arc<Endpoint>,
    dst: SocketAddr,
}

impl Link for SimLink {
    async fn deliver(&mut self, frame: Vec<u8>) -> std::io::Result<()> {
        let ppm = DUPLICATE_PPM.load(Ordering::Relaxed);
        if ppm > 0 && madsim::rand::thread_rng().gen_range(0..1_000_000u32) < ppm {
            self.ep.send_to(self.dst, TAG, &frame).await?;
        }
        self.ep.send_to(self.dst, TAG, &frame).await
    }
}

pub struct SimTransport {
    id: NodeId,
    queues: SendQueues<Box<dyn Fn(NodeId) -> Option<SimLink> + Send + Sync>>,
}

impl SimTransport {
    /// Binds node `id`'s endpoint (the madsim node must have the IP of [`sim_addr`]).
    pub async fn bind(id: NodeId) -> std::io::Result<(Self, mpsc::Receiver<Inbound>)> {
        let ep = Arc::new(Endpoint::bind(sim_addr(id)).await?);
        let (tx, rx) = mpsc::channel(INBOX_FRAMES_MAX);
        let recv_ep = ep.clone();
        tokio::spawn(async move {
            loop {
                let Ok((payload, src)) = recv_ep.recv_from_raw(TAG).await else {
                    return;
                };
                let Ok(bytes) = payload.downcast::<Vec<u8>>() else {
                    continue;
                };
                match Frame::decode(&bytes) {
                    // A frame must come from the address of the node it names.
                    Ok(f) if f.from > 0 && f.from < (1 << 24) && sim_addr(f.from).ip() == src.ip() => {
                        let _ = tx.try_send(Inbound { from: f.from, payload: f.payload });
                    }
                    Ok(f) => {
                        tracing::warn!(from = f.from, %src, "frame with a forged sender dropped")
                    }
                    Err(e) => tracing::warn!(%src, error = %e, "bad frame dropped"),
                }
            }
        });
        let make: Box<dyn Fn(NodeId) -> Option<SimLink> + Send + Sync> =
            Box::new(move |to| Some(SimLink { ep: ep.clone(), dst: sim_addr(to) }));
        Ok((SimTransport { id, queues: SendQueues::new(make) }, rx))
    }
}

impl Transport for SimTransport {
    fn send(&self, to: NodeId, payload: Vec<u8>) {
        FRAMES_SENT.fetch_add(1, Ordering::Relaxed);
        self.queues.push(to, Frame { from: self.id, payload }.encode());
    }
}
