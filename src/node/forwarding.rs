//! Requests for ranges this node hosts no replica of: forwarded to one of the range's
//! replicas, which serves the request or forwards it once more, to its leader.
//!
//! ```text
//!   client ─▶ this node (no replica) ─▶ a replica ─▶ its leader
//!        ◀─────────── the answer, back the same way ◀───┘
//! ```
//!
//! A node forwards only what came from a client: a request that reached it from another
//! node is answered `RangeMoved` with the range's descriptor (a request is forwarded to a
//! replica at most once, so never in a loop). The replica asked is the one that last
//! answered; one that timed out or knew no leader is passed over for the next one in the
//! descriptor.

use super::pending::{Origin, Pending};
use super::{ClientError, Wire, WIRE_BYTES_MAX};
use crate::codec;
use crate::io::Transport;
use crate::keyspace::RangeDescriptor;
use crate::state_machine::StateMachine;
use crate::GroupId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The seed stream of forward ids (apart from the hosted groups' own).
const FORWARD_ID_STREAM: u64 = 0x454c_5345_5748_4552;

struct Range<M: StateMachine> {
    pending: Pending<M>,
    /// Which of the range's replicas is asked next (an index into them).
    turn: usize,
}

pub struct Elsewhere<M: StateMachine> {
    ranges: BTreeMap<GroupId, Range<M>>,
    first_forward_id: u64,
    request_timeout_ms: u64,
    /// Forwards waiting, over every range, before new ones hear `Busy`.
    pending_requests_max: usize,
}

impl<M: StateMachine> Elsewhere<M> {
    /// `seed` as `NodeConfig::seed`: forward ids must not repeat across incarnations.
    pub fn new(seed: u64, request_timeout_ms: u64, pending_requests_max: usize) -> Self {
        let first_forward_id = ChaCha8Rng::seed_from_u64(seed ^ FORWARD_ID_STREAM).gen();
        Elsewhere { ranges: BTreeMap::new(), first_forward_id, request_timeout_ms, pending_requests_max }
    }

    fn len(&self) -> usize {
        self.ranges.values().map(|r| r.pending.len()).sum()
    }

    /// Sends `command` to a replica of `range`; its answer comes back through `on_reply`.
    pub fn forward(
        &mut self,
        now_ms: u64,
        range: &RangeDescriptor,
        command: &M::Command,
        origin: Origin<M>,
        transport: &impl Transport,
    ) {
        if self.len() >= self.pending_requests_max {
            return origin.answer(transport, Err(ClientError::Busy));
        }
        assert!(!range.replicas.is_empty(), "range {} is placed", range.id);
        // Each range's ids start apart, so that ranges never share one.
        let first = self.first_forward_id.wrapping_add(range.id << 40);
        let r = self.ranges.entry(range.id).or_insert_with(|| Range { pending: Pending::new(first), turn: 0 });
        let to = range.replicas[r.turn % range.replicas.len()];
        let req_id = r.pending.add_forward(origin, now_ms + self.request_timeout_ms, to, M::is_read_only(command));
        crate::sometimes!("request_forwarded_to_replica");
        transport.send(to, codec::encode(&Wire::Request { group: range.id, req_id, command: M::encode(command) }));
    }

    /// A replica's answer to a forward; one that did not come (timed out, or is for a
    /// forward already answered) is ignored.
    pub fn on_reply(
        &mut self,
        group: GroupId,
        req_id: u64,
        result: Result<Vec<u8>, ClientError>,
        transport: &impl Transport,
    ) {
        let Some(r) = self.ranges.get_mut(&group) else { return };
        let Some(f) = r.pending.forwards.remove(&req_id) else { return };
        if matches!(result, Err(ClientError::NoLeader | ClientError::Stopped | ClientError::Timeout)) {
            r.turn += 1;
        }
        // The replica answered, so the command may have run: an answer we cannot read
        // leaves the outcome unknown.
        let result = result.and_then(|bytes| {
            codec::decode(&bytes, WIRE_BYTES_MAX).map_err(|e| ClientError::UndecodableReply(e.to_string()))
        });
        f.origin.answer(transport, result);
    }

    /// Callers whose forwards passed their deadline hear `Timeout`; their ranges ask the
    /// next replica from now on.
    pub fn expire(&mut self, now_ms: u64, transport: &impl Transport) {
        for r in self.ranges.values_mut() {
            let late = r.pending.expire(now_ms);
            if !late.is_empty() {
                r.turn += 1;
            }
            for origin in late {
                origin.answer(transport, Err(ClientError::Timeout));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, KvStateMachine, Output};
    use crate::node::recorded_sends::Recorder;
    use crate::NodeId;
    use tokio::sync::oneshot;

    /// Where the last message went, and its request id.
    fn last(t: &Recorder) -> (NodeId, u64) {
        match t.0.lock().unwrap().last() {
            Some((to, Wire::Request { req_id, .. })) => (*to, *req_id),
            other => panic!("not a request: {other:?}"),
        }
    }

    fn range() -> RangeDescriptor {
        RangeDescriptor { id: 2, start: vec![], end: None, generation: 1, replicas: vec![4, 5, 6] }
    }

    type Answer = oneshot::Receiver<Result<Output, ClientError>>;

    fn forward(e: &mut Elsewhere<KvStateMachine>, now_ms: u64, t: &Recorder) -> Answer {
        let (tx, rx) = oneshot::channel();
        e.forward(now_ms, &range(), &Command::Get { key: b"k".to_vec() }, Origin::Local(tx), t);
        rx
    }

    #[test]
    fn a_forward_goes_to_a_replica_and_its_answer_to_the_caller() {
        let (mut e, t) = (Elsewhere::<KvStateMachine>::new(1, 100, 8), Recorder::default());
        let mut answer = forward(&mut e, 0, &t);
        let (to, req_id) = last(&t);
        assert_eq!(to, 4, "the first replica");
        e.on_reply(2, req_id + 1, Ok(codec::encode(&Output::Value(None))), &t);
        assert!(answer.try_recv().is_err(), "another forward's id is not this one's answer");
        e.on_reply(2, req_id, Ok(codec::encode(&Output::Value(None))), &t);
        assert_eq!(answer.try_recv().unwrap(), Ok(Output::Value(None)));
    }

    #[test]
    fn a_replica_that_times_out_or_knows_no_leader_is_passed_over() {
        let (mut e, t) = (Elsewhere::<KvStateMachine>::new(1, 100, 8), Recorder::default());
        let mut late = forward(&mut e, 0, &t);
        e.expire(100, &t);
        assert_eq!(late.try_recv().unwrap(), Err(ClientError::Timeout));
        let _leaderless = forward(&mut e, 100, &t);
        let (to, req_id) = last(&t);
        assert_eq!(to, 5, "the next replica");
        e.on_reply(2, req_id, Err(ClientError::NoLeader), &t);
        let _next = forward(&mut e, 100, &t);
        assert_eq!(last(&t).0, 6);
    }

    #[test]
    fn forwards_are_bounded() {
        let (mut e, t) = (Elsewhere::<KvStateMachine>::new(1, 100, 2), Recorder::default());
        let _kept = (forward(&mut e, 0, &t), forward(&mut e, 0, &t));
        let mut refused = forward(&mut e, 0, &t);
        assert_eq!(refused.try_recv().unwrap(), Err(ClientError::Busy));
    }
}
