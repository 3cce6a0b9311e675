//! `phantomdb` command-line parsing. Flag names are an interface (scripts depend on them);
//! `node`'s flags are also the keys of its TOML config (see [`super::config`]).

use super::config::{NodeSettings, RawSettings};
use std::path::PathBuf;

pub const USAGE: &str = "\\
usage: phantomdb node --id N --data-dir DIR --peer-addr HOST:PORT --initial-cluster 1=HOST:PORT,...
                      [--resp-addr HOST:PORT] [--admin-addr HOST:PORT]
                      [--cluster-secret-file FILE] [--config node.toml] [tuning flags]
       phantomdb demo [--nodes 3] [--ranges 1] [--port-base 7000] [--data-dir DIR]

  node     run one node of a cluster on real I/O (TCP between nodes, fjall on disk)
           --id N                      this node's id (1 or more; must be in --initial-cluster)
           --data-dir DIR              the node's state; restarting with the same DIR resumes
                                       the node; one process per DIR (it is locked)
           --peer-addr HOST:PORT       where this node listens for its peers
           --initial-cluster LIST      every node as ID=HOST:PORT, comma-separated
           --initial-voters 1,2,3      which of them form the group at first (default: all);
                                       the others wait until POST /membership adds them
           --resp-addr HOST:PORT       where Redis clients connect (redis-cli, redis-benchmark)
           --admin-addr HOST:PORT      HTTP: /health, /metrics (Prometheus), /status (JSON)
           --cluster-secret-file FILE  shared by every node (16 bytes or more); peers without
                                       it are refused. Without it peers are not authenticated.
           --config FILE               TOML with the same keys as the flags (without --);
                                       flags given on the command line win
         tuning:
           --resp-password-file FILE   clients must AUTH with this password
           --max-value-bytes N         largest key or value accepted (default 524288)
           --max-clients N             open client connections (default 1024)
           --sync-writes true|false    fsync before answering (default true)
           --request-timeout-ms N      how long a request may wait (default 2000)
           --snapshot-entries N        compact the log after N applied entries (default 10000)
           --lease-reads true|false    a leader answers reads from its lease, without a round
                                       of messages (default false: ReadIndex, no clock needed)
           --clock-drift-ppm-max N     the clock rate error leases assume (default 10000 = 1%);
                                       followers seen beyond it back no lease
           --election-timeout-ms N     a follower that hears no leader for a time drawn from
                                       [N, 2N) ms starts an election (default 150)
           --heartbeat-interval-ms N   how often a leader heartbeats (default 30)
           --sharding hash|range       how keys map to ranges, fixed when the cluster is
                                       created: hash (Redis Cluster slots, {tags}; default)
                                       or range (keys in byte order)
           --ranges N                  hash sharding: N ranges of equal slot intervals
                                       (default 1)
           --split-points K1,K2,...    range sharding: where the ranges are cut
           --replication-factor N      replicas of each range, placed round-robin over the
                                       initial voters (default 3, or every voter if fewer);
                                       a node forwards requests for ranges it does not host
           --range-bytes-max N         a range's leader splits it once it holds more than N
                                       bytes of keys and values (default 67108864; 0: never)
           --range-ops-per-s-max N     ... or once it serves more than N requests a second
                                       for two seconds, at a key sampled from them (default
                                       0: off until placement spreads the halves)
           --placement true|false      while this node leads the meta range, move replicas
                                       and leaderships until every node holds within one
                                       of the others (default true)
           --joining ID,ID,...         initial voters that start with no replica, the same
                                       on every node: the ranges are placed over the others
                                       and placement fills these once they run
           --node-dead-ms N            a node silent for N ms is dead to placement, which
                                       moves its replicas to live nodes (default 60000)
           logs go to stderr; RUST_LOG sets the filter (default: info)

  demo     a local cluster in this process, one command: node i serves RESP on port P+i,
           admin HTTP on P+1000+i and peers on P+2000+i (P = --port-base). Data lives in a
           temporary directory unless --data-dir is given. --ranges N cuts the keys into N
           ranges of 3 replicas each (GET /ranges lists them). Ctrl-C stops it cleanly.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    pub nodes: u64,
    pub port_base: u16,
    /// `None`: a temporary directory, removed at exit.
    pub data_dir: Option<PathBuf>,
    /// Ranges the key space is cut into (hash sharding), 3 replicas each.
    pub ranges: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Node(Box<NodeSettings>),
    Demo(DemoArgs),
    Help,
}

fn number<T: std::str::FromStr>(flag: &str, v: &str, what: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} {v:?}: expected {what}"))
}

/// Parses the arguments after the program name. Errors name the flag and what it wants.
/// A `--config` file is read here, so its errors come out the same way.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("node") => parse_node(it),
        Some("demo") => parse_demo(it),
        None | Some("-h" | "--help" | "help") => Ok(Parsed::Help),
        Some(other) => Err(format!("unknown command {other:?} (expected `node` or `demo`)")),
    }
}

fn parse_node<'a>(mut it: impl Iterator<Item = &'a String>) -> Result<Parsed, String> {
    let mut flags = RawSettings::default();
    let mut config = None;
    while let Some(flag) = it.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            return Ok(Parsed::Help);
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?.clone();
        match flag.as_str() {
            "--id" => flags.id = Some(number(flag, &v, "a node id (1 or more)")?),
            "--data-dir" => flags.data_dir = Some(v.into()),
            "--peer-addr" => flags.peer_addr = Some(v),
            "--resp-addr" => flags.resp_addr = Some(v),
            "--admin-addr" => flags.admin_addr = Some(v),
            "--initial-cluster" => flags.initial_cluster = Some(v),
            "--cluster-secret-file" => flags.cluster_secret_file = Some(v.into()),
            "--resp-password-file" => flags.resp_password_file = Some(v.into()),
            "--config" => config = Some(PathBuf::from(v)),
            "--max-value-bytes" => flags.max_value_bytes = Some(number(flag, &v, "a number of bytes")?),
            "--max-clients" => flags.max_clients = Some(number(flag, &v, "a number")?),
            "--request-timeout-ms" => flags.request_timeout_ms = Some(number(flag, &v, "milliseconds")?),
            "--sync-writes" => flags.sync_writes = Some(number(flag, &v, "true or false")?),
            "--snapshot-entries" => flags.snapshot_entries = Some(number(flag, &v, "a number of log entries")?),
            "--lease-reads" => flags.lease_reads = Some(number(flag, &v, "true or false")?),
            "--clock-drift-ppm-max" => flags.clock_drift_ppm_max = Some(number(flag, &v, "parts per million")?),
            "--initial-voters" => flags.initial_voters = Some(v),
            "--election-timeout-ms" => flags.election_timeout_ms = Some(number(flag, &v, "milliseconds")?),
            "--heartbeat-interval-ms" => flags.heartbeat_interval_ms = Some(number(flag, &v, "milliseconds")?),
            "--sharding" => flags.sharding = Some(number(flag, &v, "hash or range")?),
            "--ranges" => flags.ranges = Some(number(flag, &v, "a number of ranges")?),
            "--split-points" => flags.split_points = Some(v),
            "--replication-factor" => flags.replication_factor = Some(number(flag, &v, "a number of replicas")?),
            "--range-bytes-max" => flags.range_bytes_max = Some(number(flag, &v, "a number of bytes")?),
            "--range-ops-per-s-max" => flags.range_ops_per_s_max = Some(number(flag, &v, "requests a second")?),
            "--placement" => flags.placement = Some(number(flag, &v, "true or false")?),
            "--joining" => flags.joining = Some(v),
            "--node-dead-ms" => flags.node_dead_ms = Some(number(flag, &v, "milliseconds")?),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    let raw = match config {
        Some(path) => RawSettings::from_file(&path)?.overlay(flags),
        None => flags,
    };
    Ok(Parsed::Node(Box::new(NodeSettings::validate(raw)?)))
}

fn parse_demo<'a>(mut it: impl Iterator<Item = &'a String>) -> Result<Parsed, String> {
    let mut demo = DemoArgs { nodes: 3, port_base: 7000, data_dir: None, ranges: 1 };
    while let Some(flag) = it.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            return Ok(Parsed::Help);
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => demo.nodes = number(flag, v, "a number of nodes, 1 to 9")?,
            "--port-base" => demo.port_base = number(flag, v, "a port number")?,
            "--data-dir" => demo.data_dir = Some(v.into()),
            "--ranges" => demo.ranges = number(flag, v, "a number of ranges")?,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    if !(1..=9).contains(&demo.nodes) {
        return Err(format!("--nodes {}: expected 1 to 9", demo.nodes));
    }
    if u64::from(demo.port_base) + 2000 + demo.nodes > 65535 || demo.port_base == 0 {
        return Err(format!("--port-base {}: ports up to P+2000+nodes must be below 65536", demo.port_base));
    }
    Ok(Parsed::Demo(demo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Parsed, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_cut_and_the_placement_are_checked_with_their_flags_named() {
        let node = "node --id 1 --data-dir /d --peer-addr 127.0.0.1:9001 \
                    --initial-cluster 1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003,4=127.0.0.1:9004";
        let keyspace = |flags: &str| match p(&format!("{node} {flags}")) {
            Ok(Parsed::Node(n)) => Ok(n.keyspace),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let k = keyspace("").unwrap();
        let user = k.user_ranges();
        assert_eq!((user.len(), user[0].replicas.len()), (1, 3), "one range, 3 replicas by default");
        let k = keyspace("--sharding range --split-points b,m --replication-factor 2").unwrap();
        assert_eq!(k.user_ranges().len(), 3);
        assert_eq!(k.user_ranges()[1].replicas, [3, 4]);
        assert_eq!(keyspace("--ranges 8").unwrap().user_ranges().len(), 8);
        for (flags, named) in [
            ("--split-points b,m", "--split-points"),
            ("--sharding range --ranges 3", "--split-points instead"),
            ("--sharding range --split-points m,b", "--split-points"),
            ("--ranges 0", "--ranges"),
            ("--replication-factor 5", "--replication-factor"),
        ] {
            let e = keyspace(flags).unwrap_err();
            assert!(e.contains(named), "{flags}: {e}");
        }
    }

    #[test]
    fn a_full_node_command_parses() {
        let got = p("node --id 2 --data-dir /d --peer-addr 127.0.0.1:9002 --resp-addr 127.0.0.1:7002 \
                     --admin-addr 127.0.0.1:8002 --initial-cluster 1=127.0.0.1:9001,2=127.0.0.1:9002 \
                     --sync-writes false --max-clients 10")
        .unwrap();
        let Parsed::Node(n) = got else { panic!() };
        assert_eq!(n.id, 2);
        assert_eq!(n.initial_cluster.len(), 2);
        assert_eq!(n.admin_addr, Some("127.0.0.1:8002".parse().unwrap()));
        assert!(!n.sync_writes);
        assert_eq!(n.max_clients, 10);
    }

    #[test]
    fn errors_name_the_flag() {
        assert!(p("node --id x").unwrap_err().contains("--id"));
        assert!(p("node --id 1 --data-dir d --peer-addr nope --initial-cluster 1=127.0.0.1:1")
            .unwrap_err()
            .contains("--peer-addr"));
        assert!(p("node --id 3 --data-dir d --peer-addr 127.0.0.1:1 --initial-cluster 1=127.0.0.1:1")
            .unwrap_err()
            .contains("does not list"));
        assert!(p("node --bogus 1").unwrap_err().contains("--bogus"));
        assert!(p("node --sync-writes maybe").unwrap_err().contains("true or false"));
        assert!(p("node --sharding ranges").unwrap_err().contains("--sharding \"ranges\": expected hash or range"));
        assert!(p("node --config /nonexistent/node.toml").unwrap_err().contains("--config /nonexistent/node.toml"));
        assert!(p("demo --nodes 0").unwrap_err().contains("--nodes"));
        assert!(p("demo --port-base 65000").unwrap_err().contains("--port-base"));
        assert!(p("frobnicate").unwrap_err().contains("frobnicate"));
    }

    #[test]
    fn a_config_file_is_equivalent_to_flags_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "id = 1\ndata-dir = \"/d\"\npeer-addr = \"127.0.0.1:9001\"\nresp-addr = \"127.0.0.1:7001\"\n\
             initial-cluster = \"1=127.0.0.1:9001\"\n",
        )
        .unwrap();
        let from_file = p(&format!("node --config {}", path.display())).unwrap();
        let from_flags = p("node --id 1 --data-dir /d --peer-addr 127.0.0.1:9001 --resp-addr 127.0.0.1:7001 \
                            --initial-cluster 1=127.0.0.1:9001")
        .unwrap();
        assert_eq!(from_file, from_flags);
        let Parsed::Node(n) = p(&format!("node --config {} --resp-addr 127.0.0.1:7777", path.display())).unwrap()
        else {
            panic!()
        };
        assert_eq!(n.resp_addr, Some("127.0.0.1:7777".parse().unwrap()));
        std::fs::write(&path, "id = 1\nport = 3\n").unwrap();
        let e = p(&format!("node --config {}", path.display())).unwrap_err();
        assert!(e.contains("node.toml") && e.contains("port"), "{e}");
    }

    #[test]
    fn demo_defaults() {
        assert_eq!(p("demo").unwrap(), Parsed::Demo(DemoArgs { nodes: 3, port_base: 7000, data_dir: None, ranges: 1 }));
    }
}
