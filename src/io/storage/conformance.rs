//! The storage conformance suite: one set of checks of the [`Storage`](super::Storage)
//! contract, run against fjall (`tests/storage_conformance.rs`, normal build) and against
//! the simulated disk (same file, `--cfg madsim` build).

use super::{Storage, StorageView, WriteBatch};

/// How a suite opens and crashes the storage under test.
pub trait Harness {
    type S: Storage;
    /// Opens the storage (fresh on first call, recovered on later calls).
    fn open(&mut self) -> Self::S;
    /// Crashes: the storage is dropped without a sync and reopened. Unsynced batches may be
    /// lost, but only as a suffix.
    fn crash(&mut self, storage: Self::S) -> Self::S;
}

const P: &str = "conformance";

fn put(s: &mut impl Storage, partition: &str, k: &str, v: &str) {
    let mut b = WriteBatch::default();
    b.put(partition, k.as_bytes().to_vec(), v.as_bytes().to_vec());
    s.write(b).expect("write");
}

fn get(s: &impl Storage, partition: &str, k: &str) -> Option<String> {
    s.get(partition, k.as_bytes()).expect("get").map(|v| String::from_utf8(v).expect("utf8"))
}

/// Runs every check; panics with the name of the first one that fails.
pub fn run_all<H: Harness>(h: &mut H) {
    let mut s = h.open();
    read_your_writes(&mut s);
    batches_are_atomic_and_ordered(&mut s);
    scans_are_ordered_and_bounded(&mut s);
    range_scans_page_through_a_span(&mut s);
    a_range_delete_removes_exactly_its_span(&mut s);
    a_view_does_not_see_later_writes(&mut s);
    partitions_are_isolated(&mut s);
    invalid_partition_names_are_refused(&mut s);
    let s = synced_writes_survive_a_crash(h, s);
    let s = a_snapshot_replaces_a_log_prefix_durably(h, s);
    unsynced_writes_survive_as_a_prefix(h, s);
}

fn read_your_writes(s: &mut impl Storage) {
    put(s, P, "a", "1");
    assert_eq!(get(s, P, "a").as_deref(), Some("1"), "read_your_writes: put");
    put(s, P, "a", "2");
    assert_eq!(get(s, P, "a").as_deref(), Some("2"), "read_your_writes: overwrite");
    let mut b = WriteBatch::default();
    b.delete(P, b"a".to_vec());
    s.write(b).expect("write");
    assert_eq!(get(s, P, "a"), None, "read_your_writes: delete");
}

fn batches_are_atomic_and_ordered(s: &mut impl Storage) {
    let mut b = WriteBatch::default();
    b.put(P, b"x".to_vec(), b"1".to_vec());
    b.put(P, b"x".to_vec(), b"2".to_vec());
    b.put("conformance-other", b"y".to_vec(), b"3".to_vec());
    s.write(b).expect("write");
    assert_eq!(get(s, P, "x").as_deref(), Some("2"), "later ops in a batch win");
    assert_eq!(get(s, "conformance-other", "y").as_deref(), Some("3"), "a batch spans partitions");
}

fn scans_are_ordered_and_bounded(s: &mut impl Storage) {
    for k in ["p/3", "p/1", "q/0", "p/2", "o/9"] {
        put(s, P, k, k);
    }
    let keys: Vec<Vec<u8>> = s.scan_prefix(P, b"p/").expect("scan").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"p/1".to_vec(), b"p/2".to_vec(), b"p/3".to_vec()], "scan order and bounds");
}

fn keys(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<String> {
    pairs.into_iter().map(|(k, _)| String::from_utf8(k).expect("utf8")).collect()
}

fn range_scans_page_through_a_span(s: &mut impl Storage) {
    const R: &str = "conformance-range";
    for k in ["b", "a", "d", "c", "e"] {
        put(s, R, k, k);
    }
    put(s, "conformance-range2", "a", "elsewhere");
    let scan = |start: &str, end: Option<&str>, limit| {
        keys(s.scan_range(R, start.as_bytes(), end.map(str::as_bytes), limit).expect("scan_range"))
    };
    assert_eq!(scan("b", Some("e"), 10), ["b", "c", "d"], "range: start included, end excluded");
    assert_eq!(scan("b", Some("e"), 2), ["b", "c"], "range: at most limit pairs");
    assert_eq!(scan("c", None, 10), ["c", "d", "e"], "range: to the partition's end, not beyond");
    assert_eq!(scan("", None, 10), ["a", "b", "c", "d", "e"], "range: the whole partition");
    assert!(scan("x", None, 10).is_empty(), "range: past the last key");
    // Paging: each page starts just after the last key of the one before.
    let mut pages = Vec::new();
    let mut from = Vec::new();
    loop {
        let page = s.scan_range(R, &from, None, 2).expect("scan_range");
        let Some((last, _)) = page.last() else { break };
        from = [last.as_slice(), &[0]].concat();
        pages.push(keys(page));
    }
    assert_eq!(pages, [vec!["a", "b"], vec!["c", "d"], vec!["e"]], "paging through a span");
}

fn a_range_delete_removes_exactly_its_span(s: &mut impl Storage) {
    const R: &str = "conformance-drop";
    for k in ["a", "b", "b1", "c", "d"] {
        put(s, R, k, "v");
    }
    put(s, "conformance-drop2", "b", "other partition");
    let mut b = WriteBatch::default();
    b.put(R, b"b2".to_vec(), b"put in the batch before the range delete".to_vec());
    b.delete_range(R, b"b".to_vec(), Some(b"d".to_vec()));
    b.put(R, b"c".to_vec(), b"after".to_vec());
    s.write(b).expect("write");
    let all = keys(s.scan_range(R, b"", None, 100).expect("scan"));
    assert_eq!(all, ["a", "c", "d"], "a_range_delete_removes_exactly_its_span: [b, d), then c put again");
    assert_eq!(get(s, R, "c").as_deref(), Some("after"), "a_range_delete_removes_exactly_its_span: in batch order");
    assert_eq!(
        get(s, "conformance-drop2", "b").as_deref(),
        Some("other partition"),
        "a_range_delete_removes_exactly_its_span: one partition"
    );
    let mut b = WriteBatch::default();
    b.delete_range(R, b"b".to_vec(), None);
    s.write(b).expect("write");
    assert_eq!(
        keys(s.scan_range(R, b"", None, 100).expect("scan")),
        ["a"],
        "a_range_delete_removes_exactly_its_span: to the end"
    );
}

fn a_view_does_not_see_later_writes(s: &mut impl Storage) {
    const V: &str = "conformance-view";
    put(s, V, "a", "1");
    put(s, V, "c", "1");
    let view = s.view().expect("view");
    put(s, V, "a", "2");
    put(s, V, "b", "2");
    let mut b = WriteBatch::default();
    b.delete(V, b"c".to_vec());
    s.write(b).expect("write");
    assert_eq!(view.get(V, b"a").expect("get"), Some(b"1".to_vec()), "view: an overwrite after it");
    assert_eq!(view.get(V, b"b").expect("get"), None, "view: an insert after it");
    assert_eq!(keys(view.scan_range(V, b"", None, 10).expect("scan")), ["a", "c"], "view: a scan as of then");
    assert_eq!(keys(s.scan_range(V, b"", None, 10).expect("scan")), ["a", "b"], "the storage itself moved on");
    assert!(view.get("bad/name", b"k").is_err(), "view: partition names are checked too");
}

fn partitions_are_isolated(s: &mut impl Storage) {
    put(s, "conformance-iso", "p/1", "other");
    assert_eq!(get(s, P, "p/1").as_deref(), Some("p/1"), "partitions do not share keys");
    assert_eq!(s.scan_prefix("conformance-iso", b"").expect("scan").len(), 1, "scan stays in its partition");
}

fn invalid_partition_names_are_refused(s: &mut impl Storage) {
    assert!(s.get("", b"k").is_err(), "empty partition name");
    assert!(s.get("bad/name", b"k").is_err(), "partition name with a slash");
}

fn synced_writes_survive_a_crash<H: Harness>(h: &mut H, mut s: H::S) -> H::S {
    put(&mut s, P, "durable", "yes");
    s.sync().expect("sync");
    let s = h.crash(s);
    assert_eq!(get(&s, P, "durable").as_deref(), Some("yes"), "synced write lost in a crash");
    assert_eq!(get(&s, P, "p/2").as_deref(), Some("p/2"), "earlier synced write lost in a crash");
    s
}

/// Log compaction as the node does it: a large snapshot value and the deletion of the log
/// entries it replaces in one batch, synced; after a crash both are there, and the
/// entries after the snapshot are untouched and still scan in order.
fn a_snapshot_replaces_a_log_prefix_durably<H: Harness>(h: &mut H, mut s: H::S) -> H::S {
    const PART: &str = "raft-conformance";
    let key = |i: u64| [b"log".as_slice(), &i.to_be_bytes()].concat();
    let mut b = WriteBatch::default();
    for i in 1..=100u64 {
        b.put(PART, key(i), vec![i as u8; 100]);
    }
    s.write(b).expect("write");
    s.sync().expect("sync");
    let snapshot: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut b = WriteBatch::default();
    b.put(PART, b"snap".to_vec(), snapshot.clone());
    for i in 1..=60u64 {
        b.delete(PART, key(i));
    }
    s.write(b).expect("write");
    s.sync().expect("sync");
    let s = h.crash(s);
    assert_eq!(s.get(PART, b"snap").expect("get"), Some(snapshot), "the snapshot survives whole");
    let left: Vec<Vec<u8>> = s.scan_prefix(PART, b"log").expect("scan").into_iter().map(|(k, _)| k).collect();
    assert_eq!(left, (61..=100u64).map(key).collect::<Vec<_>>(), "exactly the entries after the snapshot remain");
    s
}

/// A sync started with `start_sync` covers what was written before it started, even
/// while writes go on meanwhile; those may survive a crash only as a prefix, as unsynced
/// writes do. Async: the job runs on the caller's runtime.
pub async fn a_started_sync_covers_earlier_writes<H: Harness>(h: &mut H) {
    let mut s = h.open();
    put(&mut s, "started", "before", "1");
    let job = s.start_sync();
    put(&mut s, "started", "during-1", "1");
    put(&mut s, "started", "during-2", "1");
    job.await.expect("sync job");
    let s = h.crash(s);
    assert_eq!(get(&s, "started", "before").as_deref(), Some("1"), "a write before the sync was lost");
    let during1 = get(&s, "started", "during-1").is_some();
    let during2 = get(&s, "started", "during-2").is_some();
    assert!(during1 || !during2, "a later unsynced batch survived an earlier one");
    drop(s);
}

fn unsynced_writes_survive_as_a_prefix<H: Harness>(h: &mut H, mut s: H::S) -> H::S {
    const N: usize = 20;
    for i in 0..N {
        let mut b = WriteBatch::default();
        b.put("prefix", format!("k{i:02}").into_bytes(), b"v".to_vec());
        b.put("prefix", b"last".to_vec(), i.to_string().into_bytes());
        s.write(b).expect("write");
    }
    let s = h.crash(s);
    let present: Vec<usize> = (0..N).filter(|i| get(&s, "prefix", &format!("k{i:02}")).is_some()).collect();
    let kept = present.len();
    assert_eq!(present, (0..kept).collect::<Vec<_>>(), "a later batch survived an earlier one");
    let last = get(&s, "prefix", "last");
    let want = if kept == 0 { None } else { Some((kept - 1).to_string()) };
    assert_eq!(last, want, "a batch survived only in part");
    s
}
