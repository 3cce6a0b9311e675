//! The node's side of the directory of ranges (`crate::meta`): the meta range's replicas
//! learn reports into it while applying, its leader proposes only what is news, and every
//! node packs the descriptors of the ranges it leads into bounded reports.
//!
//! The directory is one record of the meta range's data (`meta::DIRECTORY_KEY`), written
//! in the same batch as the applied index like any write, so it is snapshotted, moved and
//! recovered with the range. Until the first report is applied it is the cluster's ranges
//! as created (`founding`: the same on every node, from the cluster's configuration).

use super::group_data::{Applying, DATA_PARTITION};
use super::range_change::REPORT_BYTES_MAX;
use super::NodeError;
use crate::codec;
use crate::io::StorageView;
use crate::keyspace::RangeDescriptor;
use crate::meta::{Directory, Learned, DIRECTORY_BYTES_MAX, DIRECTORY_KEY, REPORT_RANGES_MAX};
use crate::raft::PlantedBug;

fn decode(bytes: Option<Vec<u8>>, founding: &[RangeDescriptor]) -> Result<Directory, NodeError> {
    match bytes {
        None => Ok(Directory::new(founding)),
        Some(bytes) => codec::decode(&bytes, DIRECTORY_BYTES_MAX)
            .map_err(|e| NodeError::Corrupt(format!("the directory of ranges does not decode: {e}"))),
    }
}

/// The directory as the meta range has applied it, read from storage.
pub fn read(storage: &impl StorageView, founding: &[RangeDescriptor]) -> Result<Directory, NodeError> {
    decode(storage.get(DATA_PARTITION, DIRECTORY_KEY)?, founding)
}

/// Learns `ranges` into the directory in `data` (the meta range's, being applied);
/// the new tiling if it changed.
pub fn learn<V: StorageView>(
    data: &mut Applying<'_, V>,
    founding: &[RangeDescriptor],
    ranges: &[RangeDescriptor],
    bug: Option<PlantedBug>,
) -> Result<Option<Vec<RangeDescriptor>>, NodeError> {
    let mut directory = decode(data.get_system(DIRECTORY_KEY)?, founding)?;
    let partial = PlantedBug::DirectoryTiledPartly.is_active(bug);
    let (mut changed, mut tiled) = (false, false);
    for range in ranges {
        match directory.learn_with(range, partial) {
            Learned::Stale | Learned::Malformed => {}
            Learned::Pending => changed = true,
            Learned::Tiled { .. } => {
                crate::sometimes!("directory_tiled");
                (changed, tiled) = (true, true);
            }
        }
    }
    if changed {
        data.put_system(DIRECTORY_KEY, codec::encode(&directory))?;
    }
    Ok(tiled.then(|| directory.ranges().to_vec()))
}

/// The descriptors of `ranges` that would change the directory as applied: what the
/// meta range's leader proposes of a report (the rest it knows already).
pub fn news(
    storage: &impl StorageView,
    founding: &[RangeDescriptor],
    ranges: Vec<RangeDescriptor>,
) -> Result<Vec<RangeDescriptor>, NodeError> {
    let directory = read(storage, founding)?;
    Ok(ranges.into_iter().filter(|r| directory.is_news(r)).collect())
}

/// `ranges` in reports of at most `REPORT_RANGES_MAX` descriptors, each ending once its
/// descriptors' keys reach `REPORT_BYTES_MAX` (a report holds one descriptor at least).
pub fn pack(ranges: Vec<RangeDescriptor>) -> Vec<Vec<RangeDescriptor>> {
    let mut reports = Vec::new();
    let mut report: Vec<RangeDescriptor> = Vec::new();
    let mut bytes = 0;
    for range in ranges {
        let size = range.start.len() + range.end.as_ref().map_or(0, Vec::len) + 64;
        if !report.is_empty() && (report.len() == REPORT_RANGES_MAX || bytes + size > REPORT_BYTES_MAX) {
            reports.push(std::mem::take(&mut report));
            bytes = 0;
        }
        bytes += size;
        report.push(range);
    }
    if !report.is_empty() {
        reports.push(report);
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(id: u64, key_bytes: usize) -> RangeDescriptor {
        RangeDescriptor { id, start: vec![1; key_bytes], end: None, generation: 1, replicas: vec![1, 2, 3] }
    }

    #[test]
    fn reports_are_bounded_in_count_and_bytes() {
        assert!(pack(Vec::new()).is_empty());
        let many: Vec<_> = (0..REPORT_RANGES_MAX as u64 + 1).map(|i| range(i, 8)).collect();
        let sizes: Vec<usize> = pack(many).iter().map(Vec::len).collect();
        assert_eq!(sizes, [REPORT_RANGES_MAX, 1]);
        let big: Vec<_> = (0..3).map(|i| range(i, REPORT_BYTES_MAX / 2)).collect();
        let sizes: Vec<usize> = pack(big).iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1], "two such keys pass the bytes bound");
        let huge = vec![range(1, REPORT_BYTES_MAX * 2)];
        assert_eq!(pack(huge).len(), 1, "a descriptor past the bound goes alone");
    }
}
