//! The node a fault names: an id, or a role resolved when the fault fires.

use super::{check_node, SpecError};
use phantomdb::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A node named in a file's fault: an id, or "leader", "follower", "random"; for a fault
/// fired by a trigger also "that" (the node the event happened on) or "other" (another
/// node, drawn when it fires).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TargetSpec {
    Id(u64),
    Name(String),
}

impl TargetSpec {
    pub fn validate(&self, nodes: u64) -> Result<(), SpecError> {
        match self {
            TargetSpec::Id(n) => check_node(*n, nodes, "node"),
            TargetSpec::Name(s) if ["leader", "follower", "random", "that", "other"].contains(&s.as_str()) => Ok(()),
            TargetSpec::Name(s) => Err(SpecError::new(
                "node",
                format!("{s:?}: expected a node id, \"leader\", \"follower\", \"random\", \"that\" or \"other\""),
            )),
        }
    }

    /// "random" is drawn now, from the scenario's stream; roles wait for the run.
    pub fn resolve(&self, nodes: u64, rng: &mut ChaCha8Rng) -> Target {
        match self {
            TargetSpec::Id(n) => Target::Node(*n),
            TargetSpec::Name(s) => match s.as_str() {
                "leader" => Target::Leader,
                "follower" => Target::Follower,
                "that" => Target::That,
                "other" => Target::Other,
                _ => Target::Node(rng.gen_range(1..=nodes)),
            },
        }
    }
}

/// A node chosen when the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(NodeId),
    Leader,
    Follower,
    /// The node a trigger's event happened on.
    That,
    /// A node other than that one, up when the fault fires.
    Other,
}

impl TargetSpec {
    /// Names a trigger's node ("that", "other"), which only a fault with `on` may use.
    pub fn is_relative(&self) -> bool {
        matches!(self, TargetSpec::Name(s) if s == "that" || s == "other")
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Node(n) => write!(f, "n{n}"),
            Target::Leader => write!(f, "leader"),
            Target::Follower => write!(f, "follower"),
            Target::That => write!(f, "that node"),
            Target::Other => write!(f, "another node"),
        }
    }
}
