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
    Cas {
        swapped: bool,
        current: Option<String>,
    },
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

/// Parses one line of a `--history` file back into an [`Op`]. The meaning of `output`
/// depends on `op` (a write's `"ok"` is not a read of the value "ok"), so it is read by
/// hand rather than derived.
pub fn parse_line(line: &str) -> Result<Op, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let field = |name: &str| v.get(name).ok_or_else(|| format!("missing field `{name}`"));
    let string = |name: &str| -> Result<String, String> {
        field(name)?.as_str().map(String::from).ok_or_else(|| format!("`{name}` is not a string"))
    };
    let number = |name: &str| -> Result<u64, String> {
        field(name)?.as_u64().ok_or_else(|| format!("`{name}` is not a non-negative integer"))
    };
    let opt_string = |x: &serde_json::Value, what: &str| -> Result<Option<String>, String> {
        match x {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => Ok(Some(s.clone())),
            _ => Err(format!("`{what}` is neither a string nor null")),
        }
    };
    let op = match string("op")?.as_str() {
        "get" => OpKind::Get,
        "put" => OpKind::Put,
        "append" => OpKind::Append,
        "delete" => OpKind::Delete,
        "cas" => OpKind::Cas,
        other => return Err(format!("`op` {other:?} is not get/put/append/delete/cas")),
    };
    let unknown = field("unknown")?.as_bool().ok_or("`unknown` is not a boolean")?;
    let raw_value = field("value")?;
    let value = match (op, raw_value) {
        (OpKind::Cas, x) => OpValue::Cas {
            expected: opt_string(x.get("expected").ok_or("a cas `value` needs `expected`")?, "value.expected")?,
            new: x.get("new").and_then(|n| n.as_str()).ok_or("a cas `value` needs a string `new`")?.to_string(),
        },
        (_, x) => opt_string(x, "value")?.map_or(OpValue::None, OpValue::Value),
    };
    let raw_output = field("output")?;
    let output = if unknown {
        None
    } else {
        Some(match op {
            OpKind::Get => OpOutput::Value(opt_string(raw_output, "output")?),
            OpKind::Cas => OpOutput::Cas {
                swapped: raw_output.get("swapped").and_then(|s| s.as_bool()).ok_or("a cas `output` needs `swapped`")?,
                current: opt_string(
                    raw_output.get("current").ok_or("a cas `output` needs `current`")?,
                    "output.current",
                )?,
            },
            _ => OpOutput::Ok("ok"),
        })
    };
    Ok(Op {
        client: string("client")?,
        op,
        key: string("key")?,
        value,
        output,
        call: number("call")?,
        ret: number("return")?,
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_json() {
        let ops = [
            Op {
                client: "c1".into(),
                op: OpKind::Get,
                key: "k".into(),
                value: OpValue::None,
                output: Some(OpOutput::Value(Some("ok".into()))),
                call: 1,
                ret: 2,
                unknown: false,
            },
            Op {
                client: "c1".into(),
                op: OpKind::Put,
                key: "k".into(),
                value: OpValue::Value("v".into()),
                output: Some(OpOutput::Ok("ok")),
                call: 1,
                ret: 2,
                unknown: false,
            },
            Op {
                client: "c2".into(),
                op: OpKind::Cas,
                key: "k".into(),
                value: OpValue::Cas { expected: None, new: "n".into() },
                output: Some(OpOutput::Cas { swapped: true, current: None }),
                call: 3,
                ret: 4,
                unknown: false,
            },
            Op {
                client: "c2".into(),
                op: OpKind::Delete,
                key: "k".into(),
                value: OpValue::None,
                output: None,
                call: 3,
                ret: 4,
                unknown: true,
            },
        ];
        for op in ops {
            let line = serde_json::to_string(&op).unwrap();
            assert_eq!(parse_line(&line).unwrap(), op, "{line}");
        }
        assert!(parse_line("{\"op\":\"get\"}").unwrap_err().contains("missing field"));
    }
}
