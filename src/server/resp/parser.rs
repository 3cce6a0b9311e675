//! Incremental parsing of client requests in RESP (the Redis serialization protocol).
//!
//! A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), or an inline
//! command: one line of printable ASCII split on spaces (`PING\r\n`, for people at a
//! `nc` prompt). Pure: bytes in, requests out, no I/O.
//!
//! Limits are checked on the headers, before anything is buffered: a bulk longer than
//! `bulk_bytes_max`, more than `args_max` arguments, or a request over
//! `request_bytes_max` is an error as soon as its header arrives. Every error is fatal to
//! the connection (the stream is out of step); the caller answers it and closes.

/// One request: the command name and its arguments, as bytes.
pub type Args = Vec<Vec<u8>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// The longest bulk string (so: the longest key or value).
    pub bulk_bytes_max: usize,
    /// Arguments in one request, the command name included.
    pub args_max: usize,
    /// Encoded bytes of one request, headers included.
    pub request_bytes_max: usize,
}

/// An inline command is one line; a longer one is refused.
const INLINE_BYTES_MAX: usize = 64 * 1024;
/// A header line (`*<n>` or `$<n>`) is short; a long one is garbage.
const HEADER_BYTES_MAX: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0).escape_default())]
    ExpectedBulk(u8),
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
    #[error("Protocol error: a bulk of {len} bytes exceeds the maximum value size of {max} bytes")]
    BulkTooLarge { len: u64, max: usize },
    #[error("Protocol error: {count} arguments exceed the limit of {max}")]
    TooManyArgs { count: u64, max: usize },
    #[error("Protocol error: the request exceeds {max} bytes")]
    RequestTooLarge { max: usize },
    #[error("Protocol error: inline request is not printable text or is too long")]
    BadInline,
}

#[derive(Debug)]
pub struct RequestParser {
    limits: ParseLimits,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as requests.
    consumed: usize,
}

impl RequestParser {
    pub fn new(limits: ParseLimits) -> Self {
        assert!(limits.bulk_bytes_max < limits.request_bytes_max, "a bulk must fit in a request");
        assert!(limits.args_max >= 1, "a request has a command name");
        RequestParser { limits, buf: Vec::new(), consumed: 0 }
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request, `None` if more bytes are needed. An empty inline line
    /// is skipped, as Redis does.
    pub fn next_request(&mut self) -> Result<Option<Args>, ParseError> {
        loop {
            let input = &self.buf[self.consumed..];
            if input.is_empty() {
                return Ok(None);
            }
            let parsed =
                if input[0] == b'*' { parse_multibulk(input, self.limits)? } else { parse_inline(input, self.limits)? };
            let Some((args, used)) = parsed else {
                if input.len() > self.limits.request_bytes_max {
                    return Err(ParseError::RequestTooLarge { max: self.limits.request_bytes_max });
                }
                return Ok(None);
            };
            debug_assert!(used > 0);
            self.consumed += used;
            if !args.is_empty() {
                return Ok(Some(args));
            }
        }
    }

    /// Bytes received and not yet parsed into a request.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }
}

/// Finds the CRLF-terminated line at the start of `input`, looking at most `max` bytes
/// ahead. `Ok(None)`: incomplete.
fn line(input: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, ()> {
    let window = &input[..input.len().min(max + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&input[..end], end + 2))),
        None if window.len() >= max + 2 => Err(()),
        None => Ok(None),
    }
}

/// A header's decimal number: digits only (a leading `-` allowed where `signed`).
fn number(text: &[u8], signed: bool) -> Option<i64> {
    let digits = if signed { text.strip_prefix(b"-").unwrap_or(text) } else { text };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_multibulk(input: &[u8], limits: ParseLimits) -> Result<Option<(Args, usize)>, ParseError> {
    let Some((header, mut pos)) = line(input, HEADER_BYTES_MAX).map_err(|_| ParseError::InvalidMultibulkLength)? else {
        return Ok(None);
    };
    let count = number(&header[1..], true).ok_or(ParseError::InvalidMultibulkLength)?;
    if count <= 0 {
        // `*0` and `*-1` are empty requests; Redis skips them.
        return Ok(Some((Vec::new(), pos)));
    }
    let count = count as u64;
    if count > limits.args_max as u64 {
        return Err(ParseError::TooManyArgs { count, max: limits.args_max });
    }
    let mut args = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let rest = &input[pos..];
        let Some(&first) = rest.first() else { return Ok(None) };
        if first != b'$' {
            return Err(ParseError::ExpectedBulk(first));
        }
        let Some((header, used)) = line(rest, HEADER_BYTES_MAX).map_err(|_| ParseError::InvalidBulkLength)? else {
            return Ok(None);
        };
        let len = number(&header[1..], false).ok_or(ParseError::InvalidBulkLength)? as u64;
        if len > limits.bulk_bytes_max as u64 {
            return Err(ParseError::BulkTooLarge { len, max: limits.bulk_bytes_max });
        }
        let len = len as usize;
        let end = pos + used + len + 2;
        if end > limits.request_bytes_max {
            return Err(ParseError::RequestTooLarge { max: limits.request_bytes_max });
        }
        if input.len() < end {
            return Ok(None);
        }
        if &input[end - 2..end] != b"\r\n" {
            return Err(ParseError::MissingCrlf);
        }
        args.push(input[pos + used..end - 2].to_vec());
        pos = end;
    }
    Ok(Some((args, pos)))
}

/// An inline request obeys the same limits as a multibulk one.
fn parse_inline(input: &[u8], limits: ParseLimits) -> Result<Option<(Args, usize)>, ParseError> {
    // A lone `\n` ends an inline line too (what `nc` without `-C` sends).
    let end = input.iter().position(|&b| b == b'\n');
    let Some(end) = end else {
        if input.len() > INLINE_BYTES_MAX || !input.iter().all(|&b| printable(b) || b == b'\r') {
            return Err(ParseError::BadInline);
        }
        return Ok(None);
    };
    let text = input[..end].strip_suffix(b"\r").unwrap_or(&input[..end]);
    if text.len() > INLINE_BYTES_MAX || !text.iter().all(|&b| printable(b)) {
        return Err(ParseError::BadInline);
    }
    if end + 1 > limits.request_bytes_max {
        return Err(ParseError::RequestTooLarge { max: limits.request_bytes_max });
    }
    let args: Args = text.split(|&b| b == b' ' || b == b'\t').filter(|a| !a.is_empty()).map(<[u8]>::to_vec).collect();
    if args.len() > limits.args_max {
        return Err(ParseError::TooManyArgs { count: args.len() as u64, max: limits.args_max });
    }
    if let Some(long) = args.iter().find(|a| a.len() > limits.bulk_bytes_max) {
        return Err(ParseError::BulkTooLarge { len: long.len() as u64, max: limits.bulk_bytes_max });
    }
    Ok(Some((args, end + 1)))
}

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits { bulk_bytes_max: 16, args_max: 4, request_bytes_max: 64 };

    fn parse_all(bytes: &[u8]) -> Result<Vec<Args>, ParseError> {
        let mut p = RequestParser::new(LIMITS);
        p.extend(bytes);
        let mut out = Vec::new();
        while let Some(r) = p.next_request()? {
            out.push(r);
        }
        Ok(out)
    }

    fn args(words: &[&str]) -> Args {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_and_inline_requests_parse() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nECHO  hi\n*0\r\n\r\n").unwrap();
        assert_eq!(got, vec![args(&["GET", "k"]), args(&["PING"]), args(&["ECHO", "hi"])]);
    }

    #[test]
    fn binary_values_survive() {
        let got = parse_all(b"*2\r\n$3\r\nSET\r\n$4\r\n\r\n\x00\xff\r\n").unwrap();
        assert_eq!(got, vec![vec![b"SET".to_vec(), b"\r\n\x00\xff".to_vec()]]);
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        let bytes = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\nPING\r\n";
        for cut in 0..=bytes.len() {
            let mut p = RequestParser::new(LIMITS);
            let mut out = Vec::new();
            p.extend(&bytes[..cut]);
            while let Some(r) = p.next_request().unwrap() {
                out.push(r);
            }
            p.extend(&bytes[cut..]);
            while let Some(r) = p.next_request().unwrap() {
                out.push(r);
            }
            assert_eq!(out, vec![args(&["SET", "k", "value"]), args(&["PING"])], "cut at {cut}");
            assert_eq!(p.buffered(), 0);
        }
    }

    #[test]
    fn oversized_headers_are_refused_before_the_body_arrives() {
        let huge = format!("*1\r\n${}\r\n", 1u64 << 40);
        assert_eq!(parse_all(huge.as_bytes()), Err(ParseError::BulkTooLarge { len: 1 << 40, max: 16 }));
        assert_eq!(parse_all(b"*1\r\n$17\r\n"), Err(ParseError::BulkTooLarge { len: 17, max: 16 }));
        assert_eq!(parse_all(b"*1\r\n$16\r\n").unwrap(), Vec::<Args>::new(), "the limit itself is fine");
        assert_eq!(parse_all(b"*5\r\n"), Err(ParseError::TooManyArgs { count: 5, max: 4 }));
        assert_eq!(
            parse_all(b"*4\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n"),
            Err(ParseError::RequestTooLarge { max: 64 })
        );
        assert_eq!(parse_all(b"*99999999999999999999\r\n"), Err(ParseError::InvalidMultibulkLength));
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        assert_eq!(parse_all(b"*1\r\n+OK\r\n"), Err(ParseError::ExpectedBulk(b'+')));
        assert_eq!(parse_all(b"*1\r\n$-1\r\n"), Err(ParseError::InvalidBulkLength));
        assert_eq!(parse_all(b"*1\r\n$1\r\nab\r\n"), Err(ParseError::MissingCrlf));
        assert_eq!(parse_all(b"*x\r\n"), Err(ParseError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"\x00\x01\x02"), Err(ParseError::BadInline));
        assert_eq!(parse_all(b"GET \xff\r\n"), Err(ParseError::BadInline));
        assert_eq!(parse_all(b"*1\r\n$1111111111111111111111111111111111111111"), Err(ParseError::InvalidBulkLength));
        assert_eq!(parse_all(&[b'a'; INLINE_BYTES_MAX + 1]), Err(ParseError::BadInline));
    }

    #[test]
    fn inline_requests_obey_the_same_limits() {
        assert_eq!(parse_all(b"a b c d e\r\n"), Err(ParseError::TooManyArgs { count: 5, max: 4 }));
        assert_eq!(parse_all(b"GET 0123456789abcdefg\r\n"), Err(ParseError::BulkTooLarge { len: 17, max: 16 }));
        let long = format!("GET {}\r\n", "k ".repeat(40));
        assert!(matches!(parse_all(long.as_bytes()), Err(ParseError::RequestTooLarge { .. })));
    }
}
