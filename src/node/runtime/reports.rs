//! Ranges report to the directory (`crate::meta`): every report interval each node sends
//! the descriptors of the ranges it leads to the meta range's replicas, and the meta
//! range's leader proposes what is news (and hears, for placement, what the node leads:
//! `placing.rs`). Best-effort on purpose: a report lost is sent
//! again an interval later, and the directory never depends on one arriving.

use super::Node;
use crate::codec;
use crate::io::{Storage, Transport};
use crate::keyspace::{RangeDescriptor, META_RANGE};
use crate::node::directory_reports;
use crate::node::{NodeError, Wire};
use crate::state_machine::StateMachine;
use crate::NodeId;

/// How often a node reports the ranges it leads: soon enough that the directory trails a
/// split or a move by a second, rarely enough that reports cost nothing.
pub(super) const REPORT_INTERVAL_MS: u64 = 1_000;

impl<T: Transport, S: Storage, M: StateMachine> Node<T, S, M> {
    /// Sends the descriptors of the ranges led here, once an interval.
    pub(super) fn report_ranges(&mut self, now_ms: u64) -> Result<(), NodeError> {
        if now_ms < self.next_report_ms {
            return Ok(());
        }
        self.next_report_ms = now_ms + REPORT_INTERVAL_MS;
        let led: Vec<RangeDescriptor> =
            self.groups.values().filter(|g| g.raft.is_leader() && !g.is_removed()).map(|g| g.range().clone()).collect();
        let me = self.cfg.id();
        let meta_replicas = self.topology.map.find(META_RANGE).map(|r| r.replicas.clone()).unwrap_or_default();
        self.report_node(now_ms, &meta_replicas);
        for report in directory_reports::pack(led) {
            for &peer in meta_replicas.iter().filter(|&&n| n != me) {
                self.transport.send(peer, codec::encode(&Wire::RangeReport { ranges: report.clone() }));
            }
            self.on_range_report(me, report)?;
        }
        Ok(())
    }

    /// A report heard (or made here): proposed to the meta range if it leads here and the
    /// report is news to its directory.
    pub(super) fn on_range_report(&mut self, from: NodeId, ranges: Vec<RangeDescriptor>) -> Result<(), NodeError> {
        let Some(meta) = self.groups.get_mut(&META_RANGE).filter(|g| g.raft.is_leader()) else { return Ok(()) };
        if meta.is_removed() {
            return Ok(());
        }
        let news = directory_reports::news(&self.disk.storage, meta.founding(), ranges)?;
        if !news.is_empty() {
            crate::sometimes!("range_report_proposed");
            if let Err(e) = meta.propose_report(news) {
                tracing::debug!(node = self.cfg.id(), from, error = %e, "range report not proposed");
            }
        }
        Ok(())
    }
}
