//! Raft messages a node sends in one batch, coalesced per peer: every group's messages to
//! the same node travel in one frame (`Wire::RaftBatch`), so N groups that heartbeat on
//! the same tick cost one message per node pair, not N.

use super::{Wire, WIRE_BYTES_MAX};
use crate::codec;
use crate::io::Transport;
use crate::raft::{Envelope, Message};
use crate::NodeId;
use std::collections::BTreeMap;

/// Estimated encoded bytes per frame before a new one starts: half the decode limit, so
/// the estimate's error (a few bytes of framing per entry) can never push a frame over.
const FRAME_BYTES_BUDGET: usize = WIRE_BYTES_MAX / 2;

/// Messages to peers, in order per peer. Those that promise durable state
/// (`Durability::Synced`) are kept apart: `take_synced` hands them over to wait for the
/// sync, while the others go out with the next `flush`.
#[derive(Debug, Default)]
pub struct PeerFrames {
    to: BTreeMap<NodeId, Vec<Envelope>>,
    synced: BTreeMap<NodeId, Vec<Envelope>>,
}

/// An upper estimate of an envelope's encoded size.
fn estimate_bytes(env: &Envelope) -> usize {
    const OVERHEAD: usize = 128;
    match &env.message {
        Message::AppendEntries { entries, .. } => OVERHEAD + entries.iter().map(|e| 64 + e.size_bytes()).sum::<usize>(),
        Message::InstallSnapshot { data, membership, .. } => {
            OVERHEAD
                + data.len()
                + 16 * (membership.voters.len() + membership.outgoing.len() + membership.learners.len())
        }
        _ => OVERHEAD,
    }
}

impl PeerFrames {
    pub fn push(&mut self, env: Envelope, synced: bool) {
        let to = if synced { &mut self.synced } else { &mut self.to };
        to.entry(env.to).or_default().push(env);
    }

    /// Keeps only the messages of the groups `keep` says (the others' replicas were
    /// removed since they were staged: they promise log entries the removal deleted).
    pub fn retain_groups(&mut self, keep: impl Fn(crate::GroupId) -> bool) {
        for envelopes in self.to.values_mut().chain(self.synced.values_mut()) {
            envelopes.retain(|e| keep(e.group));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.to.is_empty() && self.synced.is_empty()
    }

    /// The messages that wait for the sync, as frames of their own (sent by `flush`).
    pub fn take_synced(&mut self) -> PeerFrames {
        PeerFrames { to: std::mem::take(&mut self.synced), synced: BTreeMap::new() }
    }

    /// Sends what needs no sync, one frame per peer (more if a batch is large), in order.
    pub fn flush(&mut self, transport: &impl Transport) {
        // Coalescing is an optimisation: messages alone must work as well.
        let budget = if crate::buggify!("split_frames") { 0 } else { FRAME_BYTES_BUDGET };
        for (peer, envelopes) in std::mem::take(&mut self.to) {
            let mut frame: Vec<Envelope> = Vec::new();
            let mut bytes = 0;
            for env in envelopes {
                let size = estimate_bytes(&env);
                if !frame.is_empty() && bytes + size > budget {
                    send(transport, peer, std::mem::take(&mut frame));
                    bytes = 0;
                }
                bytes += size;
                frame.push(env);
            }
            send(transport, peer, frame);
        }
    }
}

fn send(transport: &impl Transport, peer: NodeId, mut frame: Vec<Envelope>) {
    let wire = match frame.len() {
        0 => return,
        1 => Wire::Raft(frame.pop().expect("one")),
        _ => Wire::RaftBatch(frame),
    };
    transport.send(peer, codec::encode(&wire));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::recorded_sends::Recorder;
    use crate::raft::{Entry, Payload};

    fn heartbeat(group: u64, to: NodeId, bytes: usize) -> Envelope {
        let entries = if bytes == 0 {
            vec![]
        } else {
            vec![Entry { term: 1, index: 1, payload: Payload::Command(vec![7; bytes]) }]
        };
        let message = Message::AppendEntries {
            term: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries,
            leader_commit: 0,
            read_seq: 0,
            sent_ms: 0,
        };
        Envelope { group, from: 1, to, message }
    }

    #[test]
    fn the_groups_messages_to_a_peer_travel_in_one_frame() {
        let mut frames = PeerFrames::default();
        for group in 1..=3 {
            for to in [2, 3] {
                frames.push(heartbeat(group, to, 0), true);
            }
        }
        let sent = Recorder::default();
        frames.flush(&sent);
        assert!(sent.0.lock().unwrap().is_empty(), "the synced ones wait");
        frames.take_synced().flush(&sent);
        assert!(frames.is_empty());
        let frames = sent.0.into_inner().unwrap();
        assert_eq!(frames.len(), 2, "one frame per peer");
        for (to, wire) in frames {
            let Wire::RaftBatch(envs) = wire else { panic!("a batch: {wire:?}") };
            assert_eq!(envs.iter().map(|e| (e.group, e.to)).collect::<Vec<_>>(), [(1, to), (2, to), (3, to)]);
        }
    }

    #[test]
    fn a_lone_message_goes_as_itself_and_a_large_batch_is_split() {
        let mut frames = PeerFrames::default();
        frames.push(heartbeat(1, 2, 0), false);
        let big = FRAME_BYTES_BUDGET / 3;
        for group in 1..=4 {
            frames.push(heartbeat(group, 3, big), false);
        }
        let sent = Recorder::default();
        frames.flush(&sent);
        let frames = sent.0.into_inner().unwrap();
        assert!(matches!(frames[0], (2, Wire::Raft(_))));
        let to_3: Vec<usize> = frames[1..]
            .iter()
            .map(|(_, w)| match w {
                Wire::RaftBatch(envs) => envs.len(),
                Wire::Raft(_) => 1,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(to_3, [2, 2], "split under the frame budget, order kept");
    }
}
