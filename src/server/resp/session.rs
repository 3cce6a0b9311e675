//! One client connection's state and the answer to each request that does not need the
//! log (PING, HELLO, AUTH, INFO, ...). Pure: the network loop feeds it requests and the
//! node's status and does what it says.

use super::command::{command_info, ClientQuery, CommandQuery, KvRequest, Request, COMMANDS};
use super::{Protocol, Reply};
use crate::node::{ClientError, NodeStatus};
use crate::server::metrics::Outcome;

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Reply(Reply),
    /// Run through the log, then answer with [`KvRequest::reply`].
    Run(KvRequest),
    /// Answer, then close the connection (QUIT).
    ReplyAndClose(Reply),
}

#[derive(Debug)]
pub struct Session {
    id: u64,
    /// `None`: no password is configured and every connection may run commands.
    password: Option<Vec<u8>>,
    authenticated: bool,
    /// For `CONFIG GET proto-max-bulk-len`.
    value_bytes_max: usize,
    /// What replies are encoded in, from the one to the request that set it (`HELLO`).
    protocol: Protocol,
}

impl Session {
    pub fn new(id: u64, password: Option<Vec<u8>>, value_bytes_max: usize) -> Self {
        let authenticated = password.is_none();
        Session { id, password, authenticated, value_bytes_max, protocol: Protocol::Resp2 }
    }

    /// The protocol the reply to the last request, and those after it, are encoded in.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn handle(&mut self, request: Request, status: &NodeStatus) -> Step {
        let allowed_before_auth = matches!(request, Request::Auth { .. } | Request::Hello { .. } | Request::Quit);
        if !self.authenticated && !allowed_before_auth {
            return Step::Reply(Reply::Error("NOAUTH Authentication required.".into()));
        }
        let reply = match request {
            Request::Ping(None) => Reply::Status("PONG"),
            Request::Ping(Some(m)) | Request::Echo(m) => Reply::Bulk(Some(m)),
            Request::Quit => return Step::ReplyAndClose(Reply::ok()),
            Request::Select(0) => Reply::ok(),
            Request::Select(_) => Reply::err("DB index is out of range"),
            Request::Auth { user, password } => self.auth(user.as_deref(), &password),
            Request::Hello { protover, auth } => {
                let protocol = match protover {
                    None => self.protocol,
                    Some(2) => Protocol::Resp2,
                    Some(3) => Protocol::Resp3,
                    Some(_) => return Step::Reply(Reply::Error("NOPROTO unsupported protocol version".into())),
                };
                if let Some((user, password)) = auth {
                    let r = self.auth(Some(&user), &password);
                    if r != Reply::ok() {
                        return Step::Reply(r);
                    }
                }
                if !self.authenticated {
                    return Step::Reply(Reply::Error(
                        "NOAUTH HELLO must be called with AUTH when a password is set".into(),
                    ));
                }
                // The reply to HELLO already speaks the protocol it chose, as Redis's does.
                self.protocol = protocol;
                self.hello(status)
            }
            Request::Info => Reply::bulk(info(status)),
            Request::Command(CommandQuery::All) => Reply::Array(COMMANDS.iter().map(command_info).collect()),
            Request::Command(CommandQuery::Count) => Reply::Int(COMMANDS.len() as i64),
            // redis-cli asks for the docs to drive its hints; none is a fine answer.
            Request::Command(CommandQuery::Docs) => Reply::Array(vec![]),
            Request::Command(CommandQuery::Info(names)) => Reply::Array(
                names
                    .iter()
                    .map(|n| {
                        let n = String::from_utf8_lossy(n).to_ascii_lowercase();
                        COMMANDS.iter().find(|c| c.name == n).map_or(Reply::Array(vec![]), command_info)
                    })
                    .collect(),
            ),
            Request::ConfigGet(patterns) => self.config_get(&patterns),
            Request::Client(ClientQuery::Set) => Reply::ok(),
            Request::Client(ClientQuery::GetName) => Reply::Bulk(None),
            Request::Client(ClientQuery::Id) => Reply::Int(self.id as i64),
            Request::Kv(kv) => return Step::Run(kv),
        };
        Step::Reply(reply)
    }

    fn auth(&mut self, user: Option<&[u8]>, password: &[u8]) -> Reply {
        let Some(expected) = &self.password else {
            return Reply::err("AUTH <password> called without any password configured for the default user");
        };
        if user.is_some_and(|u| u != b"default") || !constant_time_eq(expected, password) {
            return Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
        }
        self.authenticated = true;
        Reply::ok()
    }

    fn hello(&self, status: &NodeStatus) -> Reply {
        let role = if status.role == "leader" { "master" } else { "replica" };
        Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("phantomdb")),
            (Reply::bulk("version"), Reply::bulk(env!("CARGO_PKG_VERSION"))),
            (Reply::bulk("proto"), Reply::Int(self.protocol.version())),
            (Reply::bulk("id"), Reply::Int(self.id as i64)),
            (Reply::bulk("mode"), Reply::bulk("standalone")),
            (Reply::bulk("role"), Reply::bulk(role)),
            (Reply::bulk("modules"), Reply::Array(vec![])),
        ])
    }

    /// Harmless answers for what tools ask (redis-benchmark asks for `save` and
    /// `appendonly`); an unknown parameter is simply absent, as in Redis.
    fn config_get(&self, patterns: &[Vec<u8>]) -> Reply {
        let known: [(&str, String); 5] = [
            ("save", String::new()),
            ("appendonly", "no".into()),
            ("databases", "1".into()),
            ("maxmemory", "0".into()),
            ("proto-max-bulk-len", self.value_bytes_max.to_string()),
        ];
        let mut out = Vec::new();
        for (name, value) in &known {
            if patterns.iter().any(|p| p == b"*" || p.eq_ignore_ascii_case(name.as_bytes())) {
                out.push((Reply::bulk(*name), Reply::bulk(value.as_str())));
            }
        }
        Reply::Map(out)
    }
}

/// `INFO`: Redis's `# Section` / `field:value` layout, with the Raft position.
pub fn info(s: &NodeStatus) -> String {
    let leader = s.leader.map_or_else(|| "none".to_string(), |l| l.to_string());
    let mut text = format!(
        "# Server\r\nredis_version:7.0.0\r\nphantomdb_version:{}\r\nnode_id:{}\r\nraft_group:{}\r\n\r\n\
         # Replication\r\nrole:{}\r\nterm:{}\r\nleader:{}\r\nvoters:{}\r\nlast_index:{}\r\n\
         commit_index:{}\r\napplied_index:{}\r\nsnapshot_index:{}\r\nelections_started:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        s.id,
        s.group,
        s.role,
        s.term,
        leader,
        s.voters.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        s.last_index,
        s.commit_index,
        s.applied_index,
        s.snapshot_index,
        s.elections_started,
    );
    for f in &s.followers {
        text.push_str(&format!("follower_{}:match_index={},lag={}\r\n", f.id, f.match_index, f.lag));
    }
    text.push_str(&format!("\r\n# Keyspace\r\ndb0:keys={}\r\n", s.keys));
    text
}

/// The reply for a failed call through the log, and how the metrics count it. Definite
/// failures are `-TRYAGAIN` (nothing was applied; retry). An unknown outcome of a write is
/// `-UNCERTAIN`, so that a client does not mistake "maybe applied" for "failed"; a read
/// can always be retried, so there it is `-TRYAGAIN` too.
// Only the real build has the network server that calls it.
#[cfg_attr(madsim, allow(dead_code))]
pub fn failure_reply(e: &ClientError, read: bool) -> (Reply, Outcome) {
    let definite = match e {
        ClientError::NoLeader | ClientError::NotLeader { .. } => "no leader is known right now",
        ClientError::Busy => "the node is at its request limit",
        ClientError::Dropped => "a new leader took over before the command committed; it was not applied",
        ClientError::WrongGroup { .. } => "the keys moved to another group",
        // The node learnt the range's newer descriptor from the answer: a retry goes there.
        ClientError::RangeMoved { .. } => "the keys' range split or moved",
        ClientError::Malformed(_) => "the request did not decode at its leader",
        ClientError::ReservedKey => return (Reply::Error(format!("ERR {e}")), Outcome::Refused),
        // Redis Cluster's answer to the same situation; a real node hosts one group.
        ClientError::CrossGroup => {
            return (Reply::Error("CROSSSLOT Keys in request don't hash to the same slot".into()), Outcome::TryAgain)
        }
        ClientError::Displaced
        | ClientError::Timeout
        | ClientError::Stopped
        | ClientError::LeaderChanged
        | ClientError::UndecodableReply(_) => {
            if !read {
                return (Reply::Error(format!("UNCERTAIN {e}")), Outcome::Uncertain);
            }
            "the read did not complete"
        }
    };
    (Reply::Error(format!("TRYAGAIN {definite}; retry")), Outcome::TryAgain)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &mut Session, words: &str) -> Step {
        let args = words.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        match Request::parse(args) {
            Ok(r) => s.handle(r, &NodeStatus::default()),
            Err(refusal) => Step::Reply(refusal.0),
        }
    }

    fn err(text: &str) -> Step {
        Step::Reply(Reply::Error(text.into()))
    }

    #[test]
    fn a_password_gates_everything_but_auth() {
        let mut s = Session::new(1, Some(b"pw".to_vec()), 100);
        assert_eq!(run(&mut s, "GET k"), err("NOAUTH Authentication required."));
        assert_eq!(run(&mut s, "PING"), err("NOAUTH Authentication required."));
        assert_eq!(run(&mut s, "AUTH nope"), err("WRONGPASS invalid username-password pair or user is disabled."));
        assert_eq!(run(&mut s, "AUTH bob pw"), err("WRONGPASS invalid username-password pair or user is disabled."));
        assert_eq!(run(&mut s, "AUTH default pw"), Step::Reply(Reply::ok()));
        assert!(matches!(run(&mut s, "GET k"), Step::Run(KvRequest::Get(_))));
    }

    #[test]
    fn hello_chooses_the_protocol_and_can_authenticate() {
        let mut s = Session::new(1, Some(b"pw".to_vec()), 100);
        assert!(matches!(run(&mut s, "HELLO 3"), Step::Reply(Reply::Error(e)) if e.starts_with("NOAUTH")));
        assert_eq!(s.protocol(), Protocol::Resp2, "a refused HELLO changes nothing");
        assert_eq!(run(&mut s, "HELLO 4"), err("NOPROTO unsupported protocol version"));
        let Step::Reply(Reply::Map(fields)) = run(&mut s, "HELLO 3 AUTH default pw") else { panic!("a map") };
        assert!(fields.contains(&(Reply::bulk("proto"), Reply::Int(3))), "{fields:?}");
        assert_eq!(s.protocol(), Protocol::Resp3);
        assert_eq!(run(&mut s, "PING"), Step::Reply(Reply::Status("PONG")));
        let Step::Reply(Reply::Map(fields)) = run(&mut s, "HELLO") else { panic!("a map") };
        assert!(fields.contains(&(Reply::bulk("proto"), Reply::Int(3))), "HELLO alone keeps the protocol");
        run(&mut s, "HELLO 2");
        assert_eq!(s.protocol(), Protocol::Resp2);
    }

    #[test]
    fn without_a_password_auth_says_so() {
        let mut s = Session::new(1, None, 100);
        assert!(matches!(run(&mut s, "AUTH x"), Step::Reply(Reply::Error(e)) if e.contains("without any password")));
        assert_eq!(run(&mut s, "SELECT 0"), Step::Reply(Reply::ok()));
        assert_eq!(run(&mut s, "SELECT 1"), Step::Reply(Reply::err("DB index is out of range")));
        assert_eq!(run(&mut s, "QUIT"), Step::ReplyAndClose(Reply::ok()));
        assert_eq!(
            run(&mut s, "CONFIG GET save"),
            Step::Reply(Reply::Map(vec![(Reply::bulk("save"), Reply::bulk(""))]))
        );
    }

    #[test]
    fn failures_are_retriable_or_uncertain() {
        let (r, o) = failure_reply(&ClientError::NoLeader, false);
        assert!(matches!(r, Reply::Error(e) if e.starts_with("TRYAGAIN ")));
        assert_eq!(o, Outcome::TryAgain);
        assert_eq!(failure_reply(&ClientError::Timeout, false).1, Outcome::Uncertain);
        assert_eq!(failure_reply(&ClientError::Timeout, true).1, Outcome::TryAgain);
    }

    #[test]
    fn info_reports_the_raft_position() {
        let s = NodeStatus {
            id: 2,
            role: "leader",
            term: 5,
            leader: Some(2),
            commit_index: 9,
            applied_index: 8,
            ..Default::default()
        };
        let text = info(&s);
        for field in ["role:leader\r\n", "term:5\r\n", "leader:2\r\n", "commit_index:9\r\n", "applied_index:8\r\n"] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }
}
