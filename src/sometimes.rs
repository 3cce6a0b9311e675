//! "Sometimes" marks (Antithesis's sometimes-assertions, FoundationDB's code probes): a
//! rare situation worth reaching, named where it happens. `sometimes!("mark")` counts a
//! visit in the simulated build and compiles to nothing in the real one. A sweep reports
//! which marks its seeds reached, and a scenario can require marks, so that coverage of
//! the interesting states cannot decay without a failing check.
//!
//! ```text
//!   simulator: start() ─▶ run ─▶ product and sim code: sometimes!("mark") counts
//!              finish() ─▶ every mark of MARKS with its count (0: not reached)
//! ```
//!
//! A mark observes and never steers: counting one changes no behaviour, so a run with
//! marks is the run without them. Every mark is listed in [`MARKS`] with what it means.

/// Every mark, with the situation it stands for.
pub const MARKS: &[(&str, &str)] = &[
    (
        "old_term_entry_on_majority",
        "a new leader's log holds an older term's entry on a majority, not yet committed (Raft Figure 8)",
    ),
    ("read_failed_on_leader_change", "a leader stopped leading with ReadIndex reads in flight, and failed them"),
    ("snapshot_sent", "a leader sent a snapshot to a follower whose entries it had compacted away"),
    ("snapshot_installed", "a follower installed a leader's snapshot"),
    (
        "learner_promoted_while_snapshot_streams",
        "a configuration made a learner a voter while a snapshot streamed to it",
    ),
    ("joint_config_committed", "a joint configuration (C_old,new) committed"),
    ("check_quorum_step_down", "a leader stepped down because it had not heard from a quorum"),
    ("transfer_timeout_now_sent", "a leader handed over with TimeoutNow"),
    ("conflicting_suffix_truncated", "a follower truncated a conflicting suffix of its log"),
    ("corrupt_data_dropped", "a node restarted after a checksum failure and dropped a group's corrupt data"),
    ("state_fetched", "a replica that had lost its data to corruption fetched a peer's and restored it"),
    ("request_forwarded_to_replica", "a node that hosts no replica of a request's range forwarded it to one"),
    (
        "range_moved_answered",
        "a node that hosts no replica of a forwarded request's range answered with its descriptor",
    ),
    ("range_split", "a replica applied a split of its range: the right half became a new range"),
    (
        "range_moved_at_apply",
        "a range refused to apply a command whose key a split had given away, answering where it went",
    ),
    (
        "missing_replica_adopted",
        "a node that skipped a split, or that a move listed, learnt the range from a replica's messages and started its own, empty",
    ),
    (
        "range_installed_from_snapshot",
        "a replica that skipped a split installed a snapshot of the narrower range and dropped the rest",
    ),
    ("replica_moved", "a range's leader finished moving a replica to another node"),
    ("replica_removed", "a replica applied its removal from its range and dropped its data"),
    ("half_move_tidied", "a range's leader tidied a replica move left half-done (a listed non-voter, or a stray learner)"),
    (
        "removed_replica_collected",
        "a replica removed while down or cut off learnt from a peer's newer descriptor that it is none, and dropped itself",
    ),
    (
        "stale_remnant_asked",
        "a node's map sent a request to a range it hosts that no longer holds the key, so it asked the range's other replicas",
    ),
    ("range_split_by_size", "a range's leader proposed a split of its range, grown past range_bytes_max"),
    ("range_split_by_load", "a range's leader proposed a split of its range, hot past range_ops_per_s_max"),
    ("range_report_proposed", "the meta range's leader proposed a report of ranges that was news to the directory"),
    (
        "directory_report_waits",
        "the directory kept a range's report pending: the descriptors around it were not known yet",
    ),
    ("directory_tiled", "the directory's tiling changed: reported ranges replaced older ones"),
    ("placement_repair_ordered", "placement ordered a dead node's replica of a range moved to a live node"),
    ("placement_moved_replica", "a range's leader started a replica move that placement ordered"),
    ("placement_transferred_leader", "a range's leader started a leadership transfer that placement ordered"),
];

/// `sometimes!("mark")`: counts a visit of a rare situation (simulated build only).
#[macro_export]
macro_rules! sometimes {
    ($mark:literal) => {{
        #[cfg(madsim)]
        $crate::sometimes::visit($mark);
    }};
}

#[cfg(madsim)]
pub use sim::{finish, start, visit};

#[cfg(madsim)]
mod sim {
    use super::MARKS;
    use std::cell::RefCell;

    thread_local! {
        /// Counts of the run in progress on this thread, in `MARKS` order (`None`: not
        /// counting). Per thread, as madsim runs a world on the thread that started it.
        static COUNTS: RefCell<Option<Vec<u64>>> = const { RefCell::new(None) };
    }

    pub fn start() {
        COUNTS.with(|c| *c.borrow_mut() = Some(vec![0; MARKS.len()]));
    }

    /// Every mark with its count in the run that `start` began (counts 0 if none did).
    pub fn finish() -> Vec<(&'static str, u64)> {
        let counts = COUNTS.with(|c| c.borrow_mut().take()).unwrap_or_else(|| vec![0; MARKS.len()]);
        MARKS.iter().map(|&(m, _)| m).zip(counts).collect()
    }

    pub fn visit(mark: &'static str) {
        let Some(i) = MARKS.iter().position(|&(m, _)| m == mark) else {
            panic!("sometimes mark {mark:?} is not listed in sometimes::MARKS");
        };
        COUNTS.with(|c| {
            if let Some(counts) = c.borrow_mut().as_mut() {
                counts[i] += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::MARKS;

    #[test]
    fn mark_names_are_unique() {
        let mut names: Vec<&str> = MARKS.iter().map(|&(m, _)| m).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MARKS.len());
    }
}
