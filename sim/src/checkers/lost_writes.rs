//! No acknowledged write is lost — the "lost updates" family of Jepsen's checkers
//! (Kingsbury, e.g. the `set` and `register` workloads), checked against the reads that
//! close every run (client `final`), after the cluster healed.
//!
//! - A key only ever appended to: every acknowledged append's token must be in the final
//!   value.
//! - A key only ever written whole (put, delete, CAS): the final value must come from a
//!   write that no acknowledged write strictly followed (values are unique per write).
//!
//! Keys with both kinds of writes are left to the linearizability checker.

use super::Violations;
use crate::history::{Op, OpKind, OpOutput};
use std::collections::BTreeMap;

pub fn check(history: &[Op]) -> Vec<String> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut v = Violations::default();
    for (key, ops) in by_key {
        let Some(fin) = ops.iter().rev().find(|o| o.client == "final" && o.op == OpKind::Get && !o.unknown) else {
            continue;
        };
        let Some(OpOutput::Value(final_value)) = &fin.output else {
            continue;
        };
        let appends = ops.iter().any(|o| o.op == OpKind::Append);
        let whole = ops.iter().any(|o| matches!(o.op, OpKind::Put | OpKind::Delete | OpKind::Cas));
        let acked_before_final = |o: &&&Op| !o.unknown && o.client != "final" && o.ret < fin.call;
        if appends && !whole {
            let tokens: Vec<&str> = final_value.as_deref().unwrap_or("").split(';').filter(|t| !t.is_empty()).collect();
            for a in ops.iter().filter(|o| o.op == OpKind::Append).filter(acked_before_final) {
                let token = a.written().unwrap_or_default().trim_end_matches(';');
                if !tokens.contains(&token) {
                    v.push(format!(
                        "key {key:?}: acknowledged append {token:?} by {} (returned at {:.6}s) is missing from the final read",
                        a.client,
                        a.ret as f64 / 1e9
                    ));
                }
            }
        } else if whole && !appends {
            check_register(key, &ops, fin, final_value.as_deref(), &mut v);
        }
    }
    v.into_vec()
}

fn writes_value(o: &Op) -> bool {
    match (&o.op, &o.output, o.unknown) {
        (OpKind::Put, _, _) => true,
        (OpKind::Cas, _, true) => true,
        (OpKind::Cas, Some(OpOutput::Cas { swapped, .. }), false) => *swapped,
        _ => false,
    }
}

fn check_register(key: &str, ops: &[&Op], fin: &Op, final_value: Option<&str>, v: &mut Violations) {
    let ret = |o: &Op| if o.unknown { u64::MAX } else { o.ret };
    // The latest a write that produced the final value can have finished.
    let source_ret = match final_value {
        Some(val) => {
            let sources: Vec<&&Op> = ops.iter().filter(|o| writes_value(o) && o.written() == Some(val)).collect();
            if sources.is_empty() {
                v.push(format!("key {key:?}: final value {val:?} was never written"));
                return;
            }
            sources.iter().map(|o| ret(o)).max().expect("non-empty")
        }
        None => ops.iter().filter(|o| o.op == OpKind::Delete).map(|o| ret(o)).max().unwrap_or(0),
    };
    for w in ops.iter().filter(|o| !o.unknown && o.client != "final" && o.ret < fin.call) {
        let acked_write = match w.op {
            OpKind::Delete => final_value.is_some(),
            _ => writes_value(w) && w.written() != final_value,
        };
        if acked_write && w.call > source_ret {
            v.push(format!(
                "key {key:?}: acknowledged {:?} {:?} by {} ([{:.6}s, {:.6}s]) was lost: the final read saw {final_value:?}, written earlier",
                w.op,
                w.written(),
                w.client,
                w.call as f64 / 1e9,
                w.ret as f64 / 1e9
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::linearizability::tests::{get, op, put};
    use crate::history::OpValue;

    fn final_get(v: Option<&str>, call: u64) -> Op {
        get("final", v, call, call + 1)
    }
    fn append(c: &str, token: &str, call: u64, ret: u64) -> Op {
        op(c, OpKind::Append, OpValue::Value(format!("{token};")), Some(OpOutput::Ok("ok")), call, ret)
    }

    #[test]
    fn passes_when_every_acknowledged_write_survives() {
        let h = [append("a", "x", 0, 1), append("b", "y", 2, 3), final_get(Some("x;y;"), 100)];
        assert!(check(&h).is_empty());
        let h = [put("a", "1", 0, 1), put("b", "2", 2, 3), final_get(Some("2"), 100)];
        assert!(check(&h).is_empty());
    }

    #[test]
    fn fails_a_lost_append() {
        let h = [append("a", "x", 0, 1), append("b", "y", 2, 3), final_get(Some("x;"), 100)];
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn fails_an_overwritten_acknowledged_put() {
        // 2 was acknowledged after 1 finished; the final read still sees 1.
        let h = [put("a", "1", 0, 1), put("b", "2", 2, 3), final_get(Some("1"), 100)];
        assert_eq!(check(&h).len(), 1);
        let h = [put("a", "1", 5, 6), final_get(None, 100)];
        assert_eq!(check(&h).len(), 1);
    }
}
