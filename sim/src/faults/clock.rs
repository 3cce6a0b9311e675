//! Clock faults: one node's clocks skewed, as on a real server. `drift_ppm` changes the
//! rate of its clocks (timers fire early or late); `offset_ms` steps only its wall clock,
//! which timers never read.

use super::{need, random_node, Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError, Target};
use crate::scenario::FaultSpec;
use phantomdb::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Clock skew bounds: a day of offset; a drift of -100% is a clock that stands still
/// (`phantomdb::io::clock::DRIFT_PPM_MAX`).
pub const CLOCK_OFFSET_MS_MAX: i64 = 86_400_000;
pub const CLOCK_DRIFT_PPM_MAX: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Offset and drift both 0: the node's clocks true again.
    ClockSkew { node: Target, offset_ms: i64, drift_ppm: i64 },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Clock(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Action::ClockSkew { node, offset_ms, drift_ppm } = self;
        write!(f, "clock_skew {node} offset {offset_ms}ms drift {drift_ppm}ppm")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    Skewed { node: NodeId, offset_ms: i64, drift_ppm: i64 },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Applied::Skewed { node, offset_ms, drift_ppm } = self;
        write!(f, "clock_skew n{node} offset {offset_ms}ms drift {drift_ppm}ppm")
    }
}

pub struct Clock;

impl Family for Clock {
    fn fields(&self, _kind: FaultKind) -> &'static [&'static str] {
        &["node", "offset_ms", "drift_ppm"]
    }

    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        need(f.node.is_some(), kind, "node")?;
        need(f.offset_ms.is_some() || f.drift_ppm.is_some(), kind, "offset_ms")?;
        if let Some(o) = f.offset_ms {
            if o.abs() > CLOCK_OFFSET_MS_MAX {
                return Err(SpecError::new("offset_ms", format!("{o}: expected at most ±{CLOCK_OFFSET_MS_MAX}")));
            }
        }
        if let Some(d) = f.drift_ppm {
            if d.abs() > CLOCK_DRIFT_PPM_MAX {
                return Err(SpecError::new(
                    "drift_ppm",
                    format!("{d}: expected at most ±{CLOCK_DRIFT_PPM_MAX} (a clock that stands still)"),
                ));
            }
        }
        Ok(())
    }

    fn resolve(&self, _kind: FaultKind, f: &FaultSpec, nodes: u64, rng: &mut ChaCha8Rng) -> AnyAction {
        Action::ClockSkew {
            node: f.node.as_ref().expect("validated").resolve(nodes, rng),
            offset_ms: f.offset_ms.unwrap_or(0),
            drift_ppm: f.drift_ppm.unwrap_or(0),
        }
        .into()
    }

    fn draw(&self, _kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let node = Target::Node(random_node(rng, b.nodes));
        let offset_ms = rng.gen_range(-b.clock_offset_ms_max..=b.clock_offset_ms_max);
        let drift_ppm = rng.gen_range(-b.clock_drift_ppm_max..=b.clock_drift_ppm_max);
        Some(Drawn {
            now: Action::ClockSkew { node, offset_ms, drift_ppm }.into(),
            undo: Some(Action::ClockSkew { node, offset_ms: 0, drift_ppm: 0 }.into()),
        })
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::{FaultEvent, Skip};
    use crate::world::World;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let Action::ClockSkew { node: target, offset_ms, drift_ppm } = *self;
            let Some(node) = world.resolve(target) else {
                return FaultEvent::Skipped { action: (*self).into(), reason: Skip::NoNodeUp };
            };
            world.clocks[&node].set_skew(offset_ms, drift_ppm);
            FaultEvent::Clock(Applied::Skewed { node, offset_ms, drift_ppm })
        }
    }

    /// The end of the faulty phase: every clock true.
    pub(crate) fn heal(world: &mut World) {
        for clock in world.clocks.values() {
            clock.set_skew(0, 0);
        }
    }
}

#[cfg(madsim)]
pub(crate) use apply::heal;
