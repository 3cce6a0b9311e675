//! A transport for the node's unit tests that keeps every message sent, decoded.

use super::{Wire, WIRE_BYTES_MAX};
use crate::codec;
use crate::io::Transport;
use crate::NodeId;
use std::sync::Mutex;

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<(NodeId, Wire)>>);

impl Transport for Recorder {
    fn send(&self, to: NodeId, payload: Vec<u8>) {
        let wire = codec::decode(&payload, WIRE_BYTES_MAX).expect("a frame we can read back");
        self.0.lock().unwrap().push((to, wire));
    }
}
