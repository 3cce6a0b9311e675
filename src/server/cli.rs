//! `phantomdb` command-line parsing. Flag names are an interface (scripts depend on them):
//! `node --id --data-dir --peer-addr --initial-cluster`.

use crate::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const USAGE: &str = "\\
usage: phantomdb node --id N --data-dir DIR --peer-addr HOST:PORT --initial-cluster 1=HOST:PORT,2=...

  node     run one node of a cluster on real I/O (TCP between nodes, fjall on disk)
           --id N                 this node's id (1 or more; must be in --initial-cluster)
           --data-dir DIR         where the node keeps its state; restarting with the same
                                  DIR resumes the node
           --peer-addr HOST:PORT  where this node listens for its peers
           --initial-cluster LIST every voter as ID=HOST:PORT, comma-separated
           logs go to stderr; RUST_LOG sets the filter (default: info)

The Redis-protocol client port and `phantomdb demo` come with the real-I/O build.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArgs {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub peer_addr: SocketAddr,
    pub initial_cluster: BTreeMap<NodeId, SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Node(NodeArgs),
    Help,
}

/// Parses the arguments after the program name. Errors name the flag and what it wants.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("node") => {}
        None | Some("-h" | "--help" | "help") => return Ok(Parsed::Help),
        Some(other) => return Err(format!("unknown command {other:?} (expected `node`)")),
    }
    let (mut id, mut data_dir, mut peer_addr, mut cluster) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => {
                let v = value?;
                let n: NodeId = v.parse().map_err(|_| format!("--id {v:?}: expected a number of 1 or more"))?;
                if n == 0 {
                    return Err("--id 0: node ids start at 1".into());
                }
                id = Some(n);
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value?)),
            "--peer-addr" => {
                let v = value?;
                peer_addr =
                    Some(v.parse().map_err(|_| format!("--peer-addr {v:?}: expected HOST:PORT, e.g. 127.0.0.1:9001"))?);
            }
            "--initial-cluster" => cluster = Some(parse_cluster(value?)?),
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    let initial_cluster: BTreeMap<NodeId, SocketAddr> = cluster.ok_or("--initial-cluster is required")?;
    if !initial_cluster.contains_key(&id) {
        return Err(format!("--initial-cluster does not list this node (--id {id})"));
    }
    Ok(Parsed::Node(NodeArgs {
        id,
        data_dir: data_dir.ok_or("--data-dir is required")?,
        peer_addr: peer_addr.ok_or("--peer-addr is required")?,
        initial_cluster,
    }))
}

fn parse_cluster(v: &str) -> Result<BTreeMap<NodeId, SocketAddr>, String> {
    let mut out = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) =
            part.split_once('=').ok_or_else(|| format!("--initial-cluster: {part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id.parse().map_err(|_| format!("--initial-cluster: {id:?} is not a node id"))?;
        let addr: SocketAddr = addr.parse().map_err(|_| format!("--initial-cluster: {addr:?} is not HOST:PORT"))?;
        if id == 0 || out.insert(id, addr).is_some() {
            return Err(format!("--initial-cluster: node id {id} is 0 or listed twice"));
        }
    }
    if out.is_empty() {
        return Err("--initial-cluster is empty".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Parsed, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn a_full_node_command_parses() {
        let got = p(
            "node --id 2 --data-dir /d --peer-addr 127.0.0.1:9002 --initial-cluster 1=127.0.0.1:9001,2=127.0.0.1:9002",
        )
        .unwrap();
        let Parsed::Node(n) = got else { panic!() };
        assert_eq!(n.id, 2);
        assert_eq!(n.initial_cluster.len(), 2);
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
        assert!(p("node --id 1 --data-dir d --peer-addr 127.0.0.1:1 --initial-cluster 1=127.0.0.1:1,1=127.0.0.1:2")
            .unwrap_err()
            .contains("twice"));
        assert!(p("node --bogus 1").unwrap_err().contains("--bogus"));
    }
}
