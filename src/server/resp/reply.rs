//! Replies, in the protocol a connection speaks: RESP2 (every Redis client) until the
//! client asks for RESP3 with `HELLO 3`, which adds a null and maps (the Redis
//! protocol specification, "RESP3").

/// The protocol of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status without CR or LF.
    Status(&'static str),
    /// `-CODE message`: the first word is the error code clients switch on.
    Error(String),
    Int(i64),
    /// `$n` bulk string; `None` is nil: `$-1` in RESP2, `_` in RESP3.
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    /// Field-value pairs: a map (`%n`) in RESP3, a flat array of 2n in RESP2.
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK")
    }

    pub fn err(message: impl Into<String>) -> Reply {
        Reply::Error(format!("ERR {}", message.into()))
    }

    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(Some(bytes.into()))
    }

    pub fn encode(&self, protocol: Protocol, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => {
                // A message must stay on one line, or the client loses its place.
                let clean: String = e.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
                line(out, b'-', clean.as_bytes());
            }
            Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(None) if protocol == Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(protocol, out);
                }
            }
            Reply::Map(pairs) => {
                match protocol {
                    Protocol::Resp3 => line(out, b'%', pairs.len().to_string().as_bytes()),
                    Protocol::Resp2 => line(out, b'*', (2 * pairs.len()).to_string().as_bytes()),
                }
                for (field, value) in pairs {
                    field.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(Protocol::Resp2, &mut out);
        out
    }

    fn enc3(r: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(Protocol::Resp3, &mut out);
        out
    }

    #[test]
    fn each_kind_encodes_as_resp2() {
        assert_eq!(enc(Reply::ok()), b"+OK\r\n");
        assert_eq!(enc(Reply::err("bad\r\nthing")), b"-ERR bad  thing\r\n");
        assert_eq!(enc(Reply::Int(-3)), b":-3\r\n");
        assert_eq!(enc(Reply::Bulk(None)), b"$-1\r\n");
        assert_eq!(enc(Reply::bulk("hi")), b"$2\r\nhi\r\n");
        assert_eq!(enc(Reply::Array(vec![Reply::Int(1), Reply::Bulk(None)])), b"*2\r\n:1\r\n$-1\r\n");
        assert_eq!(enc(Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))])), b"*2\r\n$1\r\na\r\n:1\r\n");
    }

    #[test]
    fn resp3_has_a_null_and_maps_and_the_rest_as_resp2() {
        assert_eq!(enc3(Reply::Bulk(None)), b"_\r\n");
        assert_eq!(enc3(Reply::Array(vec![Reply::Bulk(None), Reply::bulk("x")])), b"*2\r\n_\r\n$1\r\nx\r\n");
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1)), (Reply::bulk("b"), Reply::Bulk(None))]);
        assert_eq!(enc3(map), b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n");
        for same in [Reply::ok(), Reply::err("x"), Reply::Int(7), Reply::bulk("hi")] {
            assert_eq!(enc3(same.clone()), enc(same));
        }
    }
}
