//! One bounded queue and one worker task per peer, shared by both transports: only the
//! `Link` (how one frame reaches one peer) differs between TCP and the simulator.

use super::SEND_QUEUE_FRAMES_MAX;
use crate::NodeId;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::mpsc;

pub(crate) trait Link: Send + 'static {
    /// Delivers one queued item (the simulator queues encoded frames; the TCP link frames
    /// and seals payloads itself); an error drops it (the worker goes on with the next).
    fn deliver(&mut self, frame: Vec<u8>) -> impl Future<Output = std::io::Result<()>> + Send;
}

pub(crate) struct SendQueues<F> {
    queues: Mutex<BTreeMap<NodeId, mpsc::Sender<Vec<u8>>>>,
    make_link: F,
}

impl<F, L> SendQueues<F>
where
    F: Fn(NodeId) -> Option<L> + Send + Sync + 'static,
    L: Link,
{
    pub fn new(make_link: F) -> Self {
        SendQueues { queues: Mutex::new(BTreeMap::new()), make_link }
    }

    /// Queues a frame for `to`, starting its worker on first use.
    pub fn push(&self, to: NodeId, frame: Vec<u8>) {
        let mut queues = self.queues.lock().expect("send queues lock");
        if !queues.contains_key(&to) {
            let Some(mut link) = (self.make_link)(to) else {
                tracing::debug!(peer = to, "frame for an unknown peer dropped");
                return;
            };
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(SEND_QUEUE_FRAMES_MAX);
            tokio::spawn(tracing::Instrument::in_current_span(async move {
                while let Some(frame) = rx.recv().await {
                    if crate::buggify!("delay_frame") {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    if let Err(e) = link.deliver(frame).await {
                        tracing::debug!(peer = to, error = %e, "frame dropped");
                    }
                }
            }));
            queues.insert(to, tx);
        }
        let tx = &queues[&to];
        if tx.try_send(frame).is_err() {
            tracing::debug!(peer = to, "send queue full; frame dropped");
        }
    }
}
