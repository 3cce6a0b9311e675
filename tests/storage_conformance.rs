//! The storage conformance suite (`phantomdb::io::storage::conformance`) against both
//! implementations: fjall in the normal build, the simulated disk under `--cfg madsim`
//! (`cargo sim-test`), where a crash runs the disk's `reset_node` hook (the one madsim
//! runs when the simulator kills a node).

use phantomdb::io::storage::conformance::{a_started_sync_covers_earlier_writes, run_all, Harness};

#[cfg(not(madsim))]
mod fjall {
    use super::*;
    use phantomdb::io::storage::FjallStorage;

    struct FjallHarness {
        dir: tempfile::TempDir,
    }

    impl Harness for FjallHarness {
        type S = FjallStorage;
        fn open(&mut self) -> FjallStorage {
            FjallStorage::open(self.dir.path()).expect("open fjall")
        }
        fn crash(&mut self, storage: FjallStorage) -> FjallStorage {
            // Dropping without a sync is the closest an in-process test gets to a crash;
            // the SIGKILL test of issue 3 covers a real process death.
            drop(storage);
            self.open()
        }
    }

    #[test]
    fn fjall_conforms() {
        let mut h = FjallHarness { dir: tempfile::tempdir().expect("tempdir") };
        run_all(&mut h);
    }

    #[tokio::test]
    async fn a_fjall_sync_job_covers_earlier_writes() {
        let mut h = FjallHarness { dir: tempfile::tempdir().expect("tempdir") };
        a_started_sync_covers_earlier_writes(&mut h).await;
    }
}

#[cfg(madsim)]
mod sim {
    use super::*;
    use madsim::runtime::{Handle, Runtime};
    use phantomdb::io::storage::{SimDisk, SimStorage};
    use std::sync::mpsc;

    /// Runs the suite on a simulated node, for many seeds (the surviving prefix of unsynced
    /// batches is drawn from the seed). `crash` runs the same `reset_node` hook as a kill.
    #[test]
    fn sim_disk_conforms_for_many_seeds() {
        for seed in 0..50 {
            let rt = Runtime::with_seed_and_config(seed, madsim::Config::default());
            rt.add_simulator::<SimDisk>();
            rt.block_on(async {
                let node = Handle::current().create_node().name("disk").build();
                let (done_tx, done_rx) = mpsc::channel();
                node.spawn(async move {
                    struct SimHarness;
                    impl Harness for SimHarness {
                        type S = SimStorage;
                        fn open(&mut self) -> SimStorage {
                            SimStorage::open()
                        }
                        fn crash(&mut self, _storage: SimStorage) -> SimStorage {
                            let me = madsim::plugin::node();
                            <SimDisk as madsim::plugin::Simulator>::reset_node(
                                &madsim::plugin::simulator::<SimDisk>(),
                                me,
                            );
                            SimStorage::open()
                        }
                    }
                    run_all(&mut SimHarness);
                    a_started_sync_covers_earlier_writes(&mut SimHarness).await;
                    done_tx.send(()).unwrap();
                })
                .await
                .unwrap();
                done_rx.recv().unwrap();
            });
        }
    }

    /// The simulator's fault injection: an armed error fails the next write (or read)
    /// once, and the disk works again after it.
    #[test]
    fn injected_errors_fail_the_next_write_or_read_once() {
        use phantomdb::io::storage::{Storage, StorageView, WriteBatch};
        const PART: &str = "kv";
        on_a_simulated_disk(|me, mut s| {
            let mut batch = WriteBatch::default();
            batch.put(PART, b"k".to_vec(), b"v".to_vec());
            SimDisk::inject_io_error(me);
            assert!(s.write(batch.clone()).is_err(), "the armed write error fires");
            s.write(batch).expect("then writes work");
            SimDisk::inject_read_error(me);
            assert!(s.get(PART, b"k").is_err(), "the armed read error fires");
            assert_eq!(s.get(PART, b"k").unwrap().as_deref(), Some(&b"v"[..]), "then reads work");
            SimDisk::inject_read_error(me);
            SimDisk::clear_faults(me);
            assert!(s.scan_prefix(PART, b"").is_ok(), "a withdrawn error never fires");
        });
    }

    /// A damaged record fails every read that meets it (a get, a scan, a view, after a
    /// crash too) and no read that does not; writing it anew, or dropping its span,
    /// makes the disk whole again.
    #[test]
    fn a_corrupt_record_fails_the_reads_that_meet_it_until_rewritten() {
        use phantomdb::io::storage::{Storage, StorageError, StorageView, WriteBatch};
        const PART: &str = "kv";
        on_a_simulated_disk(|me, mut s| {
            assert_eq!(SimDisk::corrupt(me, PART), None, "an empty partition has nothing to damage");
            let mut batch = WriteBatch::default();
            batch.put(PART, b"only".to_vec(), b"v".to_vec());
            batch.put("other", b"x".to_vec(), b"v".to_vec());
            s.write(batch).unwrap();
            s.sync().unwrap();
            assert_eq!(SimDisk::corrupt(me, PART).as_deref(), Some(&b"only"[..]));
            let corrupt = |r: Result<_, StorageError>| matches!(r, Err(StorageError::Corrupt(_)));
            assert!(corrupt(s.get(PART, b"only").map(|_| ())), "get");
            assert!(corrupt(s.scan_prefix(PART, b"").map(|_| ())), "scan");
            assert!(corrupt(s.view().unwrap().scan_range(PART, b"", None, 10).map(|_| ())), "view");
            assert_eq!(s.get(PART, b"absent").unwrap(), None, "other keys read");
            assert!(s.scan_prefix("other", b"").is_ok(), "other partitions read");
            <SimDisk as madsim::plugin::Simulator>::reset_node(&madsim::plugin::simulator::<SimDisk>(), me);
            let mut s = SimStorage::open();
            assert!(corrupt(s.get(PART, b"only").map(|_| ())), "the damage is on the medium: it outlives a crash");
            let mut batch = WriteBatch::default();
            batch.delete_range(PART, Vec::new(), None);
            s.write(batch).unwrap();
            assert_eq!(s.scan_prefix(PART, b"").unwrap(), Vec::new(), "a dropped span reads again");
        });
    }

    /// Runs `test` on a node of a fresh simulation, with that node's disk opened.
    fn on_a_simulated_disk(test: impl FnOnce(madsim::task::NodeId, SimStorage) + Send + 'static) {
        let rt = Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.add_simulator::<SimDisk>();
        rt.block_on(async {
            let node = Handle::current().create_node().name("disk").build();
            node.spawn(async move { test(madsim::plugin::node(), SimStorage::open()) }).await.unwrap();
        });
    }
}
