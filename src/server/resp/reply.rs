//! Replies in RESP2, the version every Redis client speaks.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status without CR or LF.
    Status(&'static str),
    /// `-CODE message`: the first word is the error code clients switch on.
    Error(String),
    Int(i64),
    /// `$n` bulk string; `None` is the nil bulk (`$-1`).
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
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

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => {
                // A message must stay on one line, or the client loses its place.
                let clean: String = e.chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
                line(out, b'-', clean.as_bytes());
            }
            Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
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
        r.encode(&mut out);
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
    }
}
