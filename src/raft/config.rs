//! Static configuration of one Raft replica. Units are last in every name.

use super::PlantedBug;
use crate::{GroupId, NodeId};

#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    pub group: GroupId,
    /// The group's voters when it was created (this node may be among them or join
    /// later); membership changes in the log and in snapshots supersede it.
    pub voters: Vec<NodeId>,
    /// Election timeouts are drawn uniformly from `[min, max)` (§5.2).
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    pub heartbeat_interval_ms: u64,
    /// Limits on one AppendEntries message.
    pub append_entries_max: usize,
    pub append_bytes_max: usize,
    /// Pipelined AppendEntries messages, and bytes of entries in them, in flight per
    /// follower before the leader waits.
    pub inflight_appends_max: usize,
    pub inflight_bytes_max: usize,
    /// Entries, and bytes of entries, the leader accepts beyond its commit index before
    /// refusing new proposals (`Backpressure`).
    pub uncommitted_entries_max: u64,
    pub uncommitted_bytes_max: usize,
    /// Bytes of snapshot in one InstallSnapshot message.
    pub snapshot_chunk_bytes_max: usize,
    /// Pre-vote (Raft thesis §9.6): before a real election, a node asks whether it could
    /// win, without raising its term. A node cut off from the cluster then cannot disrupt
    /// the leader when it comes back.
    pub pre_vote: bool,
    /// Check-quorum (thesis §6.2): a leader that has not heard from a quorum within an
    /// election timeout steps down; a node that heard from a leader within the minimum
    /// election timeout refuses to help elect another (§4.2.3, disruptive servers).
    pub check_quorum: bool,
    /// Lease reads (thesis §6.4.1): a leader answers reads without a round of messages
    /// while a quorum's vote leases, started by its acknowledged appends, cannot have
    /// run out. Needs `check_quorum` (the vote lease is its).
    pub lease_reads: bool,
    /// The most any clock's rate may differ from true time, in millionths. Leases shrink
    /// by it; a follower whose clock measurably breaks it stops backing leases.
    pub clock_drift_ppm_max: u64,
    /// A bug to plant (only honoured with the `planted-bugs` feature).
    pub planted_bug: Option<PlantedBug>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("node id 0 is reserved")]
    ZeroId,
    #[error("voter {0} is listed twice")]
    DuplicateVoter(NodeId),
    #[error("election timeout range [{min}, {max}) is empty or not above the heartbeat interval {heartbeat}")]
    BadTimeouts { min: u64, max: u64, heartbeat: u64 },
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    #[error("lease reads need check-quorum: a follower's vote lease is what backs the leader's")]
    LeaseWithoutCheckQuorum,
    #[error("a clock drift bound of {ppm} ppm leaves no lease of a {election_timeout_ms_min} ms election timeout")]
    DriftBoundTooLarge { ppm: u64, election_timeout_ms_min: u64 },
}

impl Config {
    /// Defaults fit a LAN: 30 ms heartbeats, elections after 150..300 ms of silence.
    pub fn new(id: NodeId, group: GroupId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            group,
            voters,
            election_timeout_ms_min: 150,
            election_timeout_ms_max: 300,
            heartbeat_interval_ms: 30,
            append_entries_max: 64,
            append_bytes_max: 256 * 1024,
            inflight_appends_max: 16,
            inflight_bytes_max: 4 * 1024 * 1024,
            uncommitted_entries_max: 4096,
            uncommitted_bytes_max: 64 * 1024 * 1024,
            snapshot_chunk_bytes_max: 64 * 1024,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            clock_drift_ppm_max: 10_000,
            planted_bug: None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        let mut sorted = self.voters.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::DuplicateVoter(w[0]));
        }
        if self.voters.contains(&0) {
            return Err(ConfigError::ZeroId);
        }
        if self.election_timeout_ms_min >= self.election_timeout_ms_max
            || self.election_timeout_ms_min <= self.heartbeat_interval_ms
            || self.heartbeat_interval_ms == 0
        {
            return Err(ConfigError::BadTimeouts {
                min: self.election_timeout_ms_min,
                max: self.election_timeout_ms_max,
                heartbeat: self.heartbeat_interval_ms,
            });
        }
        if self.lease_reads && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if self.lease_reads
            && (self.clock_drift_ppm_max >= 1_000_000
                || super::lease::lease_ms(self.election_timeout_ms_min, self.clock_drift_ppm_max) == 0)
        {
            return Err(ConfigError::DriftBoundTooLarge {
                ppm: self.clock_drift_ppm_max,
                election_timeout_ms_min: self.election_timeout_ms_min,
            });
        }
        for (name, v) in [
            ("append_entries_max", self.append_entries_max),
            ("append_bytes_max", self.append_bytes_max),
            ("inflight_appends_max", self.inflight_appends_max),
            ("inflight_bytes_max", self.inflight_bytes_max),
            ("uncommitted_bytes_max", self.uncommitted_bytes_max),
            ("uncommitted_entries_max", self.uncommitted_entries_max as usize),
            ("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        Ok(())
    }
}
