//! Bugs we plant on purpose to prove that the simulator (and the fuzzers) find them.
//!
//! They only exist in builds with the `planted-bugs` feature; without it
//! [`PlantedBug::is_active`] is a constant `false` and the optimiser removes every
//! planted branch. A scenario selects at most one bug by name.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlantedBug {
    /// The leader counts a majority as `n / 2` replicas instead of `n / 2 + 1`, so a
    /// minority can commit (breaks §5.4 leader completeness: acknowledged writes get lost).
    QuorumOffByOne,
    /// A voter grants its vote without the election restriction (§5.4.1): a candidate with
    /// a stale log can win and overwrite committed entries.
    VoteIgnoresLog,
    /// A voter grants its vote without making it durable (§5.1, Fig. 2): after a crash it
    /// can vote twice in one term, and two leaders can be elected in one term.
    VoteNotPersisted,
    /// The leader answers a ReadIndex read without confirming with a quorum that it still
    /// leads (thesis §6.4 step 3): a deposed leader serves stale reads.
    ReadIndexWithoutQuorum,
    /// A follower installing a snapshot keeps the configuration it had instead of the one
    /// the snapshot carries (§7): it can count votes and acknowledgements in a group that
    /// no longer exists, and two leaders can be elected in one term.
    SnapshotStaleConfig,
    /// A follower grants a (pre-)vote although it heard from its leader within the
    /// minimum election timeout (the vote lease of thesis §4.2.3): a new leader can be
    /// elected while the old one still holds a read lease on that follower's promise, and
    /// the old one serves stale reads (§6.4.1).
    VoteDuringLease,
    /// A new leader starts a configuration change before it has committed an entry of its
    /// term, taking a configuration its predecessor left uncommitted as settled (thesis
    /// §4.1, Ongaro's 2015 correction): it builds on a configuration that may never
    /// commit, while the last committed one, whose quorums need not overlap the new one's,
    /// can still elect a leader.
    ConfigChangeBeforeCommitInTerm,
    /// A leader commits an entry of an earlier term by counting its replicas (the error
    /// Figure 8 of the Raft paper shows, §5.4.2): a later leader without that entry can
    /// still be elected and overwrite it, losing an acknowledged write.
    CommitOldTerm,
    /// The node runtime sends a batch's messages before the sync they wait for (Raft
    /// §5.1's "respond after persisting"): a vote or an acknowledgement can promise what a
    /// crash inside the sync then loses. Only a sync that takes time can catch it.
    SendBeforeSync,
    /// The node writes, with a run of applied entries, the applied record of the run
    /// before (the applied index and the data it describes are no longer one batch):
    /// after a crash the data holds entries the record says are still to apply, and they
    /// are applied twice (an append shows up twice).
    AppliedRecordLags,
    /// A follower installing a leader's snapshot deletes its old data before the install
    /// record is written (the record comes with the last batch): a crash in between leaves
    /// a log cut at the snapshot with neither the old data nor the new.
    InstallWithoutRecord,
    /// A heartbeat carries the leader's whole commit index, and the follower commits as
    /// far as its own log goes, instead of only as far as its acknowledged match (the cap
    /// etcd's and raft-rs's heartbeats carry): a follower with a stale suffix from an older
    /// term commits and applies entries the leader never had.
    HeartbeatCommitUnmatched,
    /// A node that dropped its data as corrupt rebuilds it from its own log even though
    /// the log was cut (it does not wait for a peer's state): it applies the entries
    /// after the cut to an empty state, so its data lacks every write before the cut.
    RepairFromOwnLog,
    /// Routing sends a key equal to a range's first key to the range before it (`<` for
    /// `<=` at the boundary), in the client and the node alike: the range it reaches does
    /// not own the key, and applying it there would write outside the range's span.
    RangeStartRoutedLeft,
    /// A range applies a command whose keys a split gave to another range since it was
    /// routed (stale routing accepted): the write lands in the new range's span outside
    /// its log, so its replicas see it at different points of their own history, or
    /// after the new range answered reads without it.
    StaleRoutingAccepted,
    /// A split drops the writes in flight to the right-hand half: the writes of the apply
    /// batch before the split entry whose keys it gives away are left out of the batch
    /// (as if the right half were taken before they were written), though their clients
    /// were answered. Acknowledged writes are lost.
    SplitDropsRightWrites,
    /// A replica move promotes its learner and demotes the old replica as soon as the
    /// learner is in the configuration, without waiting for it to catch up: the old
    /// replica leaves the voters while the new one holds nothing (a quorum of the new
    /// voters is one failure from unavailable, and the new voter cannot lead).
    RemovedBeforeCaughtUp,
    /// Applying a write over a present key adds the new pair's bytes without taking the
    /// old pair's away: the range's recorded size drifts above its data, and size-based
    /// splits fire early and at the wrong key (the check at every split catches it).
    SizeIgnoresOverwrites,
    /// A replica made anew (empty, its state lost after it was removed and added back)
    /// votes like any other: it has forgotten its predecessor's terms and votes, so a
    /// stale replica with a configuration long superseded can win with it.
    MadeAnewVotes,
    /// The directory of ranges (`meta::Directory`) tiles a report whose neighbours are
    /// not known yet: the half of a split heard first replaces its parent alone, and the
    /// directory has a gap where the other half is.
    DirectoryTiledPartly,
    /// Placement (`crate::placement`) stops balancing one replica short: it moves a
    /// replica only from a node three ahead of the target, so counts two apart stay and
    /// a node added to the cluster stays below the others.
    BalanceStopsShort,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 21] = [
        PlantedBug::QuorumOffByOne,
        PlantedBug::VoteIgnoresLog,
        PlantedBug::VoteNotPersisted,
        PlantedBug::ReadIndexWithoutQuorum,
        PlantedBug::SnapshotStaleConfig,
        PlantedBug::VoteDuringLease,
        PlantedBug::ConfigChangeBeforeCommitInTerm,
        PlantedBug::CommitOldTerm,
        PlantedBug::SendBeforeSync,
        PlantedBug::AppliedRecordLags,
        PlantedBug::InstallWithoutRecord,
        PlantedBug::HeartbeatCommitUnmatched,
        PlantedBug::RepairFromOwnLog,
        PlantedBug::RangeStartRoutedLeft,
        PlantedBug::StaleRoutingAccepted,
        PlantedBug::SplitDropsRightWrites,
        PlantedBug::RemovedBeforeCaughtUp,
        PlantedBug::SizeIgnoresOverwrites,
        PlantedBug::MadeAnewVotes,
        PlantedBug::DirectoryTiledPartly,
        PlantedBug::BalanceStopsShort,
    ];

    /// The bug named `name` (as in scenario files), if there is one.
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::QuorumOffByOne => "quorum_off_by_one",
            PlantedBug::VoteIgnoresLog => "vote_ignores_log",
            PlantedBug::VoteNotPersisted => "vote_not_persisted",
            PlantedBug::ReadIndexWithoutQuorum => "read_index_without_quorum",
            PlantedBug::SnapshotStaleConfig => "snapshot_stale_config",
            PlantedBug::VoteDuringLease => "vote_during_lease",
            PlantedBug::ConfigChangeBeforeCommitInTerm => "config_change_before_commit_in_term",
            PlantedBug::CommitOldTerm => "commit_old_term",
            PlantedBug::SendBeforeSync => "send_before_sync",
            PlantedBug::AppliedRecordLags => "applied_record_lags",
            PlantedBug::InstallWithoutRecord => "install_without_record",
            PlantedBug::HeartbeatCommitUnmatched => "heartbeat_commit_unmatched",
            PlantedBug::RepairFromOwnLog => "repair_from_own_log",
            PlantedBug::RangeStartRoutedLeft => "range_start_routed_left",
            PlantedBug::StaleRoutingAccepted => "stale_routing_accepted",
            PlantedBug::SplitDropsRightWrites => "split_drops_right_writes",
            PlantedBug::RemovedBeforeCaughtUp => "removed_before_caught_up",
            PlantedBug::SizeIgnoresOverwrites => "size_ignores_overwrites",
            PlantedBug::MadeAnewVotes => "made_anew_votes",
            PlantedBug::DirectoryTiledPartly => "directory_tiled_partly",
            PlantedBug::BalanceStopsShort => "balance_stops_short",
        }
    }

    /// Whether `planted` (the configured bug) is this one and planting is compiled in.
    #[inline]
    pub fn is_active(self, planted: Option<PlantedBug>) -> bool {
        cfg!(feature = "planted-bugs") && planted == Some(self)
    }
}
