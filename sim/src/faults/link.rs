//! Link quality, for every link at once: message loss, duplication (a copy that may
//! arrive out of order), and latency. Each fault's undo goes back to the scenario's
//! `[network]` value.

use super::{Action as AnyAction, Drawn, Family, FaultKind, NemesisBounds, SpecError};
use crate::scenario::FaultSpec;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// `None`: back to the scenario's `network.duplicate`.
    Duplicate { rate: Option<f64> },
    /// `None`: back to the scenario's `network.loss`.
    Loss { rate: Option<f64> },
    /// `None`: back to the scenario's `network.latency_ms`.
    Latency { ms: Option<[u64; 2]> },
}

impl From<Action> for AnyAction {
    fn from(a: Action) -> Self {
        AnyAction::Link(a)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Loss { rate: Some(rate) } => write!(f, "loss {rate:.3}"),
            Action::Loss { rate: None } => write!(f, "loss back to the scenario's"),
            Action::Duplicate { rate: Some(rate) } => write!(f, "duplicate {rate:.3}"),
            Action::Duplicate { rate: None } => write!(f, "duplicate back to the scenario's"),
            Action::Latency { ms: Some([lo, hi]) } => write!(f, "latency {lo}..{hi}ms"),
            Action::Latency { ms: None } => write!(f, "latency back to the scenario's"),
        }
    }
}

/// A link fault as applied: the value now in force, and whether it is the scenario's
/// own (an undo).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Applied {
    Loss { rate: f64, restored: bool },
    Duplicate { rate: f64, restored: bool },
    Latency { ms: [u64; 2], restored: bool },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Loss { restored: true, .. } => write!(f, "loss back to the scenario's"),
            Applied::Loss { rate, .. } => write!(f, "loss {rate:.3}"),
            Applied::Duplicate { restored: true, .. } => write!(f, "duplicate back to the scenario's"),
            Applied::Duplicate { rate, .. } => write!(f, "duplicate {rate:.3}"),
            Applied::Latency { restored: true, .. } => write!(f, "latency back to the scenario's"),
            Applied::Latency { ms: [lo, hi], .. } => write!(f, "latency {lo}..{hi}ms"),
        }
    }
}

pub struct Link;

impl Family for Link {
    fn fields(&self, kind: FaultKind) -> &'static [&'static str] {
        match kind {
            FaultKind::Loss | FaultKind::Duplicate => &["rate"],
            FaultKind::Latency => &["latency_ms"],
            _ => &[],
        }
    }

    /// Without `rate` (`latency_ms`), the fault sets the link back to the scenario's
    /// `network` value: what the nemesis's undo does, so a shrunk schedule can say it.
    fn validate(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64) -> Result<(), SpecError> {
        match kind {
            FaultKind::Loss | FaultKind::Duplicate => {
                if let Some(r) = f.rate {
                    if !(0.0..=1.0).contains(&r) {
                        return Err(SpecError::new("rate", format!("{r}: expected 0.0 to 1.0")));
                    }
                }
                Ok(())
            }
            FaultKind::Latency => {
                if let Some([a, b]) = f.latency_ms {
                    if a > b {
                        return Err(SpecError::new("latency_ms", format!("[{a}, {b}] is not a range")));
                    }
                }
                Ok(())
            }
            other => unreachable!("{} is not a link fault", other.name()),
        }
    }

    fn resolve(&self, kind: FaultKind, f: &FaultSpec, _nodes: u64, _rng: &mut ChaCha8Rng) -> AnyAction {
        match kind {
            FaultKind::Loss => Action::Loss { rate: f.rate },
            FaultKind::Duplicate => Action::Duplicate { rate: f.rate },
            FaultKind::Latency => Action::Latency { ms: f.latency_ms },
            other => unreachable!("{} is not a link fault", other.name()),
        }
        .into()
    }

    fn draw(&self, kind: FaultKind, b: &NemesisBounds, rng: &mut ChaCha8Rng) -> Option<Drawn> {
        let (now, undo) = match kind {
            FaultKind::Loss => {
                (Action::Loss { rate: Some(rng.gen_range(0.0..=b.loss_max)) }, Action::Loss { rate: None })
            }
            FaultKind::Duplicate => {
                (Action::Duplicate { rate: Some(rng.gen_range(0.0..=0.5)) }, Action::Duplicate { rate: None })
            }
            FaultKind::Latency => {
                let max_ms = rng.gen_range(10..=200);
                (Action::Latency { ms: Some([max_ms / 4, max_ms]) }, Action::Latency { ms: None })
            }
            other => unreachable!("{} is not a link fault", other.name()),
        };
        Some(Drawn { now: now.into(), undo: Some(undo.into()) })
    }
}

#[cfg(madsim)]
mod apply {
    use super::{Action, Applied};
    use crate::faults::FaultEvent;
    use crate::world::{latency, World};
    use madsim::net::NetSim;
    use phantomdb::io::transport::set_duplicate_rate;

    impl Action {
        pub(crate) fn apply(&self, world: &mut World) -> FaultEvent {
            let s = &world.scenario;
            let applied = match *self {
                Action::Loss { rate } => {
                    let value = rate.unwrap_or(s.loss);
                    NetSim::current().update_config(|c| c.packet_loss_rate = value);
                    Applied::Loss { rate: value, restored: rate.is_none() }
                }
                Action::Duplicate { rate } => {
                    let value = rate.unwrap_or(s.duplicate);
                    set_duplicate_rate(value);
                    Applied::Duplicate { rate: value, restored: rate.is_none() }
                }
                Action::Latency { ms } => {
                    let value = ms.unwrap_or(s.latency_ms);
                    NetSim::current().update_config(|c| c.send_latency = latency(value));
                    Applied::Latency { ms: value, restored: ms.is_none() }
                }
            };
            FaultEvent::Link(applied)
        }
    }

    /// The end of the faulty phase: the scenario's own loss, duplication and latency.
    pub(crate) fn heal(world: &mut World) {
        let (loss, lat) = (world.scenario.loss, world.scenario.latency_ms);
        set_duplicate_rate(world.scenario.duplicate);
        NetSim::current().update_config(|c| {
            c.packet_loss_rate = loss;
            c.send_latency = latency(lat);
        });
    }
}

#[cfg(madsim)]
pub(crate) use apply::heal;
