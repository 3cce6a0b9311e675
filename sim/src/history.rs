//! Client operations as the checkers (and `--history FILE`) see them: one record per
//! operation, with its call and return times in simulated nanoseconds.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Get,
    Put,
    Append,
    Delete,
    Cas,
}

/// What an operation returned. `None` in [`Op::output`] means the outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OpOutput {
    /// A read's value (`null` when the key is absent).
    Value(Option<String>),
    /// A write's acknowledgement: the string "ok".
    Ok(&'static str),
    Cas { swapped: bool, current: Option<String> },
}

/// The input of a CAS, or of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OpValue {
    None,
    Value(String),
    Cas { expected: Option<String>, new: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Op {
    /// The client: `c<N>` for workload clients, `probe` for the liveness probe, `final`
    /// for the reads that close a run.
    pub client: String,
    pub op: OpKind,
    pub key: String,
    #[serde(serialize_with = "value_or_null")]
    pub value: OpValue,
    pub output: Option<OpOutput>,
    pub call: u64,
    #[serde(rename = "return")]
    pub ret: u64,
    /// The outcome is not known (timeout or crash): the op may or may not have happened.
    pub unknown: bool,
}

fn value_or_null<S: serde::Serializer>(v: &OpValue, s: S) -> Result<S::Ok, S::Error> {
    match v {
        OpValue::None => s.serialize_none(),
        other => other.serialize(s),
    }
}

impl Op {
    /// The value this op writes, for a put/append/cas.
    pub fn written(&self) -> Option<&str> {
        match &self.value {
            OpValue::Value(v) => Some(v),
            OpValue::Cas { new, .. } => Some(new),
            OpValue::None => None,
        }
    }
}
