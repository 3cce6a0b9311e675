//! Liveness after heal — the "recovery" property of Jepsen's nemesis tests and of
//! FoundationDB/TigerBeetle simulation: once every fault is healed, the cluster must
//! commit a write again within a bounded simulated time (with several Raft groups, each
//! of them: the probe writes one key per group).

/// `heal_ns`: when the faults were healed; `first_write_ns`: when the probe's write was
/// first acknowledged after that (None: never).
pub fn check(heal_ns: u64, first_write_ns: Option<u64>, timeout_ms: u64) -> Vec<String> {
    match first_write_ns {
        Some(t) if t.saturating_sub(heal_ns) <= timeout_ms * 1_000_000 => vec![],
        Some(t) => vec![format!(
            "the first write after the heal took {:.3}s, more than the bound of {:.3}s",
            (t - heal_ns) as f64 / 1e9,
            timeout_ms as f64 / 1e3
        )],
        None => vec![format!("no write committed within {:.3}s after the heal", timeout_ms as f64 / 1e3)],
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn passes_in_time_and_fails_late_or_never() {
        assert!(check(1_000, Some(2_000), 1).is_empty());
        assert_eq!(check(0, Some(5_000_000_000), 1_000).len(), 1);
        assert_eq!(check(0, None, 1_000).len(), 1);
    }
}
