//! The PhantomDB simulator as a library: scenario files, the simulated world (madsim
//! builds only), workloads, checkers and the seed runner. The `phantomdb-sim` binary is a
//! thin command line over it.

#[cfg(madsim)]
pub mod bench;
pub mod checkers;
pub mod cli;
pub mod dir;
pub mod faults;
pub mod history;
pub mod hunt;
pub mod merge;
pub mod panics;
pub mod pool;
pub mod replay;
#[cfg(madsim)]
pub mod run;
pub mod runner;
pub mod scenario;
#[cfg(madsim)]
pub mod schedule_fuzz;
#[cfg(madsim)]
pub mod shrink;
pub mod timeline;
pub mod trace;
pub mod verdict;
pub mod view;
#[cfg(madsim)]
pub mod workload;
#[cfg(madsim)]
pub mod world;
