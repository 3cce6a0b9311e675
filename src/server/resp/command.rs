//! From a parsed request (`Args`) to a typed [`Request`], and from a state-machine
//! [`Output`] back to the [`Reply`] Redis clients expect.
//!
//! One table, [`COMMANDS`], lists what the server understands; arity checks and the
//! `COMMAND` reply both read it, so they cannot disagree.

use super::Reply;
use crate::kv::{parse_i64, Command, Output, Presence};

pub type Bytes = Vec<u8>;

/// A command the server understands: name, Redis arity (positive: exactly that many
/// arguments counting the name; negative: at least that many), and whether it writes.
pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i64,
    pub writes: bool,
}

const fn spec(name: &'static str, arity: i64, writes: bool) -> CommandSpec {
    CommandSpec { name, arity, writes }
}

pub const COMMANDS: &[CommandSpec] = &[
    spec("append", 3, true),
    spec("auth", -2, false),
    spec("client", -2, false),
    spec("command", -1, false),
    spec("config", -2, false),
    spec("dbsize", 1, false),
    spec("decr", 2, true),
    spec("decrby", 3, true),
    spec("del", -2, true),
    spec("echo", 2, false),
    spec("exists", -2, false),
    spec("get", 2, false),
    spec("hello", -1, false),
    spec("incr", 2, true),
    spec("incrby", 3, true),
    spec("info", -1, false),
    spec("mget", -2, false),
    spec("mset", -3, true),
    spec("ping", -1, false),
    spec("quit", 1, false),
    spec("select", 2, false),
    spec("set", -3, true),
    spec("strlen", 2, false),
];

/// What a connection asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Ping(Option<Bytes>),
    Echo(Bytes),
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    Hello {
        protover: Option<i64>,
        auth: Option<(Bytes, Bytes)>,
    },
    Auth {
        user: Option<Bytes>,
        password: Bytes,
    },
    Select(i64),
    Quit,
    Info,
    Command(CommandQuery),
    /// `CONFIG GET pattern...`.
    ConfigGet(Vec<Bytes>),
    Client(ClientQuery),
    /// Runs through the Raft log.
    Kv(KvRequest),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandQuery {
    All,
    Count,
    /// `COMMAND DOCS`, `COMMAND INFO name...`: answered from the table.
    Info(Vec<Bytes>),
    Docs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientQuery {
    /// `CLIENT SETNAME`/`SETINFO`: accepted and ignored.
    Set,
    GetName,
    Id,
}

/// A data command: becomes one [`Command`] in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRequest {
    Get(Bytes),
    Set { key: Bytes, value: Bytes, when: Option<Presence> },
    Del(Vec<Bytes>),
    Exists(Vec<Bytes>),
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    IncrBy { key: Bytes, delta: i64 },
    Append { key: Bytes, value: Bytes },
    Strlen(Bytes),
    DbSize,
}

/// A request that cannot run; the connection stays open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub Reply);

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

fn not_an_integer() -> Refusal {
    Refusal(Reply::err("value is not an integer or out of range"))
}

fn syntax() -> Refusal {
    Refusal(Reply::err("syntax error"))
}

fn integer(b: &[u8]) -> Result<i64, Refusal> {
    parse_i64(b).ok_or_else(not_an_integer)
}

impl Request {
    /// Types a request. `args` is never empty (the parser drops empty requests).
    pub fn parse(args: Vec<Bytes>) -> Result<Request, Refusal> {
        assert!(!args.is_empty(), "the parser drops empty requests");
        let name = lower(&args[0]);
        let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
            let shown: Vec<String> =
                args[1..].iter().take(8).map(|a| format!("'{}'", String::from_utf8_lossy(a))).collect();
            return Err(Refusal(Reply::err(format!(
                "unknown command '{}', with args beginning with: {}",
                String::from_utf8_lossy(&args[0]),
                shown.join(" ")
            ))));
        };
        let n = args.len() as i64;
        if (spec.arity > 0 && n != spec.arity) || (spec.arity < 0 && n < -spec.arity) {
            return Err(Refusal(Reply::err(format!("wrong number of arguments for '{name}' command"))));
        }
        let mut rest = args.into_iter().skip(1);
        let mut next = || rest.next().expect("arity checked");
        let request = match name.as_str() {
            "ping" => match n {
                1 => Request::Ping(None),
                2 => Request::Ping(Some(next())),
                _ => return Err(Refusal(Reply::err("wrong number of arguments for 'ping' command"))),
            },
            "echo" => Request::Echo(next()),
            "quit" => Request::Quit,
            "info" => Request::Info,
            "dbsize" => Request::Kv(KvRequest::DbSize),
            "select" => Request::Select(integer(&next()).map_err(|_| Refusal(Reply::err("invalid DB index")))?),
            "auth" => match n {
                2 => Request::Auth { user: None, password: next() },
                3 => Request::Auth { user: Some(next()), password: next() },
                _ => return Err(syntax()),
            },
            "hello" => {
                let rest: Vec<Bytes> = (1..n).map(|_| next()).collect();
                parse_hello(rest)?
            }
            "command" => {
                let rest: Vec<Bytes> = (1..n).map(|_| next()).collect();
                match rest.first().map(|s| lower(s)).as_deref() {
                    None => Request::Command(CommandQuery::All),
                    Some("count") => Request::Command(CommandQuery::Count),
                    Some("docs") => Request::Command(CommandQuery::Docs),
                    Some("info") => Request::Command(CommandQuery::Info(rest[1..].to_vec())),
                    Some(other) => return Err(Refusal(Reply::err(format!("unknown subcommand '{other}'")))),
                }
            }
            "config" => {
                let sub = lower(&next());
                let patterns: Vec<Bytes> = (2..n).map(|_| next()).collect();
                match sub.as_str() {
                    "get" if !patterns.is_empty() => Request::ConfigGet(patterns),
                    "get" => return Err(Refusal(Reply::err("wrong number of arguments for 'config|get' command"))),
                    _ => return Err(Refusal(Reply::err(format!("CONFIG {} is not supported", sub.to_uppercase())))),
                }
            }
            "client" => match lower(&next()).as_str() {
                "setname" | "setinfo" => Request::Client(ClientQuery::Set),
                "getname" => Request::Client(ClientQuery::GetName),
                "id" => Request::Client(ClientQuery::Id),
                other => return Err(Refusal(Reply::err(format!("CLIENT {} is not supported", other.to_uppercase())))),
            },
            "get" => Request::Kv(KvRequest::Get(next())),
            "strlen" => Request::Kv(KvRequest::Strlen(next())),
            "append" => Request::Kv(KvRequest::Append { key: next(), value: next() }),
            "incr" => Request::Kv(KvRequest::IncrBy { key: next(), delta: 1 }),
            "decr" => Request::Kv(KvRequest::IncrBy { key: next(), delta: -1 }),
            "incrby" => {
                let key = next();
                Request::Kv(KvRequest::IncrBy { key, delta: integer(&next())? })
            }
            "decrby" => {
                let key = next();
                let delta = integer(&next())?.checked_neg().ok_or(Refusal(Reply::err("decrement would overflow")))?;
                Request::Kv(KvRequest::IncrBy { key, delta })
            }
            "del" => Request::Kv(KvRequest::Del((1..n).map(|_| next()).collect())),
            "exists" => Request::Kv(KvRequest::Exists((1..n).map(|_| next()).collect())),
            "mget" => Request::Kv(KvRequest::MGet((1..n).map(|_| next()).collect())),
            "mset" => {
                if n % 2 == 0 {
                    return Err(Refusal(Reply::err("wrong number of arguments for 'mset' command")));
                }
                Request::Kv(KvRequest::MSet((0..(n - 1) / 2).map(|_| (next(), next())).collect()))
            }
            "set" => {
                let (key, value) = (next(), next());
                let mut when = None;
                for _ in 3..n {
                    let option = lower(&next());
                    let condition = match option.as_str() {
                        "nx" => Presence::Absent,
                        "xx" => Presence::Present,
                        "ex" | "px" | "exat" | "pxat" | "keepttl" => {
                            return Err(Refusal(Reply::err(format!(
                                "SET {} is not supported: keys do not expire",
                                option.to_uppercase()
                            ))))
                        }
                        "get" => return Err(Refusal(Reply::err("SET GET is not supported"))),
                        _ => return Err(syntax()),
                    };
                    if when.is_some_and(|w| w != condition) {
                        return Err(syntax());
                    }
                    when = Some(condition);
                }
                Request::Kv(KvRequest::Set { key, value, when })
            }
            other => unreachable!("{other} is in COMMANDS but not parsed"),
        };
        Ok(request)
    }
}

fn parse_hello(args: Vec<Bytes>) -> Result<Request, Refusal> {
    let mut it = args.into_iter();
    let protover = match it.next() {
        None => None,
        Some(v) => {
            Some(parse_i64(&v).ok_or(Refusal(Reply::err("Protocol version is not an integer or out of range")))?)
        }
    };
    let mut auth = None;
    while let Some(option) = it.next() {
        match lower(&option).as_str() {
            "auth" => {
                let (Some(user), Some(pass)) = (it.next(), it.next()) else { return Err(syntax()) };
                auth = Some((user, pass));
            }
            "setname" => {
                it.next().ok_or_else(syntax)?;
            }
            _ => return Err(syntax()),
        }
    }
    Ok(Request::Hello { protover, auth })
}

impl KvRequest {
    /// The command this request puts in the log.
    pub fn command(&self) -> Command {
        match self.clone() {
            KvRequest::Get(key) | KvRequest::Strlen(key) => Command::Get { key },
            KvRequest::Set { key, value, when: None } => Command::Put { key, value },
            KvRequest::Set { key, value, when: Some(when) } => Command::PutIf { key, value, when },
            KvRequest::Del(keys) => Command::DeleteMany { keys },
            KvRequest::Exists(keys) => Command::CountExisting { keys },
            KvRequest::MGet(keys) => Command::GetMany { keys },
            KvRequest::MSet(pairs) => Command::PutMany { pairs },
            KvRequest::IncrBy { key, delta } => Command::IncrBy { key, delta },
            KvRequest::Append { key, value } => Command::Append { key, value },
            KvRequest::DbSize => Command::CountKeys,
        }
    }

    /// Whether running it twice is harmless (it reads only): an unknown outcome can be
    /// retried by the client.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            KvRequest::Get(_) | KvRequest::Strlen(_) | KvRequest::Exists(_) | KvRequest::MGet(_) | KvRequest::DbSize
        )
    }

    /// The reply for the state machine's answer to [`KvRequest::command`].
    pub fn reply(&self, output: Output) -> Reply {
        match (self, output) {
            (_, Output::Failed(e)) => Reply::err(e.to_string()),
            (KvRequest::Get(_), Output::Value(v)) => Reply::Bulk(v),
            (KvRequest::Strlen(_), Output::Value(v)) => Reply::Int(v.map_or(0, |v| v.len() as i64)),
            (KvRequest::Set { .. } | KvRequest::MSet(_), Output::Done) => Reply::ok(),
            (KvRequest::Set { .. }, Output::Written(true)) => Reply::ok(),
            (KvRequest::Set { .. }, Output::Written(false)) => Reply::Bulk(None),
            (KvRequest::MGet(_), Output::Values(vs)) => Reply::Array(vs.into_iter().map(Reply::Bulk).collect()),
            (
                KvRequest::Del(_)
                | KvRequest::Exists(_)
                | KvRequest::IncrBy { .. }
                | KvRequest::Append { .. }
                | KvRequest::DbSize,
                Output::Int(n),
            ) => Reply::Int(n),
            (request, output) => panic!("the state machine answered {request:?} with {output:?}"),
        }
    }
}

/// The `COMMAND` reply for one table entry: name, arity, flags, first key, last key, step.
pub fn command_info(spec: &CommandSpec) -> Reply {
    let flag = if spec.writes { "write" } else { "readonly" };
    let (first, last) = match spec.name {
        "get" | "set" | "incr" | "decr" | "incrby" | "decrby" | "append" | "strlen" => (1, 1),
        "del" | "exists" | "mget" => (1, -1),
        "mset" => (1, -1),
        _ => (0, 0),
    };
    let step = if spec.name == "mset" { 2 } else { i64::from(first != 0) };
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(spec.arity),
        Reply::Array(vec![Reply::Status(flag)]),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvStateMachine;
    use crate::state_machine::{MemoryData, StateMachine};

    fn req(words: &str) -> Result<Request, Refusal> {
        Request::parse(words.split(' ').map(|w| w.as_bytes().to_vec()).collect())
    }

    fn b(s: &str) -> Bytes {
        s.as_bytes().to_vec()
    }

    #[test]
    fn commands_are_case_insensitive_and_typed() {
        assert_eq!(req("gEt k"), Ok(Request::Kv(KvRequest::Get(b("k")))));
        assert_eq!(
            req("SET k v nx"),
            Ok(Request::Kv(KvRequest::Set { key: b("k"), value: b("v"), when: Some(Presence::Absent) }))
        );
        assert_eq!(req("MSET a 1 b 2"), Ok(Request::Kv(KvRequest::MSet(vec![(b("a"), b("1")), (b("b"), b("2"))]))));
        assert_eq!(req("DECRBY k 5"), Ok(Request::Kv(KvRequest::IncrBy { key: b("k"), delta: -5 })));
        assert_eq!(
            req("HELLO 2 AUTH default pw"),
            Ok(Request::Hello { protover: Some(2), auth: Some((b("default"), b("pw"))) })
        );
        assert_eq!(req("COMMAND DOCS"), Ok(Request::Command(CommandQuery::Docs)));
        assert_eq!(req("CONFIG GET save"), Ok(Request::ConfigGet(vec![b("save")])));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let text = |r: Result<Request, Refusal>| match r {
            Err(Refusal(Reply::Error(e))) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(req("GET")), "ERR wrong number of arguments for 'get' command");
        assert_eq!(text(req("GET a b")), "ERR wrong number of arguments for 'get' command");
        assert_eq!(text(req("MSET a 1 b")), "ERR wrong number of arguments for 'mset' command");
        assert_eq!(text(req("FLUSHALL now")), "ERR unknown command 'FLUSHALL', with args beginning with: 'now'");
        assert_eq!(text(req("INCRBY k x")), "ERR value is not an integer or out of range");
        assert_eq!(text(req("DECRBY k -9223372036854775808")), "ERR decrement would overflow");
        assert_eq!(text(req("SET k v NX XX")), "ERR syntax error");
        assert!(text(req("SET k v EX 10")).contains("do not expire"));
    }

    #[test]
    fn every_table_entry_parses_at_its_arity() {
        for spec in COMMANDS {
            // `CONFIG GET` needs a pattern beyond the table's minimum.
            let n = if spec.name == "config" { 3 } else { spec.arity.unsigned_abs() as usize };
            let mut args = vec![b(spec.name)];
            let filler = match spec.name {
                "select" => "0",
                "client" => "id",
                "config" => "GET",
                "incrby" | "decrby" => "1",
                _ => "x",
            };
            args.extend((1..n).map(|_| b(filler)));
            assert!(Request::parse(args).is_ok(), "{}", spec.name);
        }
    }

    #[test]
    fn replies_follow_redis() {
        let mut data = MemoryData::default();
        let mut run = |line: &str| {
            let Ok(Request::Kv(r)) = req(line) else { panic!("{line}") };
            r.reply(KvStateMachine::apply(&r.command(), &mut data).expect("memory does not fail"))
        };
        assert_eq!(run("SET k v XX"), Reply::Bulk(None));
        assert_eq!(run("SET k v NX"), Reply::ok());
        assert_eq!(run("STRLEN k"), Reply::Int(1));
        assert_eq!(run("APPEND k w"), Reply::Int(2));
        assert_eq!(run("INCR k"), Reply::err("value is not an integer or out of range"));
        assert_eq!(run("INCRBY n 41"), Reply::Int(41));
        assert_eq!(run("INCR n"), Reply::Int(42));
        assert_eq!(run("MGET k nope n"), Reply::Array(vec![Reply::bulk("vw"), Reply::Bulk(None), Reply::bulk("42")]));
        assert_eq!(run("EXISTS k k nope"), Reply::Int(2));
        assert_eq!(run("DBSIZE"), Reply::Int(2));
        assert_eq!(run("DEL k nope"), Reply::Int(1));
        assert_eq!(run("GET k"), Reply::Bulk(None));
    }
}
