//! The RESP front on raw bytes, as a client could send them: the parser, command typing,
//! the session and the reply to whatever the state machine answers. Oracles: nothing
//! panics; the parser never holds more than its request limit; every request it accepts
//! respects the limits and parses back from its own re-encoding; every data command gets
//! a reply of the right shape.

use crate::kv::KvStateMachine;
use crate::node::NodeStatus;
use crate::server::resp::{ParseLimits, Refusal, Reply, Request, RequestParser, Session, Step};
use crate::state_machine::MemoryData;
use crate::state_machine::StateMachine;

const LIMITS: ParseLimits = ParseLimits { bulk_bytes_max: 64, args_max: 8, request_bytes_max: 512 };

fn encode_multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

pub fn run(data: &[u8]) {
    // The first byte sets the read size, so that requests straddle reads in every way;
    // the second whether the session has a password.
    let Some((&chunk, rest)) = data.split_first() else { return };
    let Some((&flags, rest)) = rest.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let password = (flags & 1 == 1).then(|| b"pw".to_vec());
    let mut parser = RequestParser::new(LIMITS);
    let mut session = Session::new(1, password, LIMITS.bulk_bytes_max);
    let mut data = MemoryData::default();
    let status = NodeStatus::default();
    for piece in rest.chunks(chunk) {
        parser.extend(piece);
        loop {
            let args = match parser.next_request() {
                Ok(Some(args)) => args,
                Ok(None) => break,
                // The connection would be answered and closed.
                Err(e) => {
                    let mut out = Vec::new();
                    Reply::err(e.to_string()).encode(session.protocol(), &mut out);
                    return;
                }
            };
            assert!(!args.is_empty(), "empty requests are skipped");
            assert!(args.len() <= LIMITS.args_max, "argument count bounded");
            assert!(args.iter().all(|a| a.len() <= LIMITS.bulk_bytes_max), "argument size bounded");
            let encoded = encode_multibulk(&args);
            if encoded.len() <= LIMITS.request_bytes_max {
                let mut again = RequestParser::new(LIMITS);
                again.extend(&encoded);
                assert_eq!(again.next_request(), Ok(Some(args.clone())), "a request parses from its encoding");
            }
            let reply = match Request::parse(args) {
                Err(Refusal(reply)) => reply,
                Ok(request) => match session.handle(request, &status) {
                    Step::Reply(r) | Step::ReplyAndClose(r) => r,
                    Step::Run(kv) => {
                        let command = kv.command();
                        let output = KvStateMachine::apply(&command, &mut data).expect("memory does not fail");
                        kv.reply(output)
                    }
                },
            };
            let mut out = Vec::new();
            reply.encode(session.protocol(), &mut out);
            assert!(!out.is_empty());
        }
        assert!(parser.buffered() <= LIMITS.request_bytes_max + chunk, "the parser holds too much");
    }
}
