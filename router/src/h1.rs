//! The HTTP/1.1 wire format toward an instance, without any IO: request heads
//! out, response heads in, and the framing of response bodies (RFC 9112 §6).
//!
//! [`wire`](crate::wire) drives this over a socket for requests without a
//! body. Everything an instance sends is checked: sizes are bounded, lengths
//! must agree, chunk sizes must parse, and anything else is an [`H1Error`].

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::http::request;
use hyper::{HeaderMap, Method, StatusCode};

/// Most header lines in one response head (hyper's own limit).
const MAX_HEADERS: usize = 100;

/// Largest response head, and largest chunk-size or trailer section.
pub const MAX_HEAD: usize = 64 * 1024;

/// Longest chunk-size line (hex digits and extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// Why an instance's answer could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum H1Error {
    #[error("the instance's answer head is malformed: {0}")]
    Head(String),
    #[error("the instance's answer head is larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("the instance answered with Content-Length values that disagree or do not parse")]
    BadLength,
    #[error(
        "the instance answered 101 Switching Protocols to a request that asked for no upgrade"
    )]
    UnaskedUpgrade,
    #[error("the instance's chunked body is malformed")]
    BadChunk,
    #[error("the instance closed the connection before its answer was complete")]
    Truncated,
}

/// Writes a request head in origin form. The headers are written as they
/// are: the caller has already removed hop-by-hop headers and added its own.
pub fn encode_request(parts: &request::Parts) -> Bytes {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut size = parts.method.as_str().len() + target.len() + 16;
    for (name, value) in &parts.headers {
        size += name.as_str().len() + value.len() + 4;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// Whether a request may be sent again after a failure that left its fate
/// unknown (RFC 9110 §9.2.2 lists more; these are the ones sent without a body).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    /// No body at all (HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the instance closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    pub reusable: bool,
}

/// Parses the response head at the front of `buf`, removing it (and any
/// interim 1xx answers before it). `Ok(None)` means more bytes are needed.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, H1Error> {
    loop {
        let Some(head) = parse_one(buf, method)? else {
            return Ok(None);
        };
        // 100 Continue, 102, 103 Early Hints: interim answers, the real one follows.
        if head.status.is_informational() {
            if head.status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(H1Error::UnaskedUpgrade);
            }
            continue;
        }
        return Ok(Some(head));
    }
}

fn parse_one(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, H1Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(H1Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(H1Error::Head(err.to_string())),
    };
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|e| H1Error::Head(e.to_string()))?;
    let http11 = parsed.version == Some(1);
    // Where each header sits in the buffer, so the values can share it.
    let base = buf.as_ptr() as usize;
    let mut spans = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|e| H1Error::Head(e.to_string()))?;
        let start = header.value.as_ptr() as usize - base;
        spans.push((name, start, start + header.value.len()));
    }
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, start, end) in spans {
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|e| H1Error::Head(e.to_string()))?;
        headers.append(name, value);
    }
    let framing = framing(&headers, status, method)?;
    let reusable = http11
        && framing != Framing::UntilClose
        && !has_token(&headers, "close")
        && !headers_have_both(&headers);
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        reusable,
    }))
}

/// RFC 9112 §6.3, in order.
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, H1Error> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.to_str().map_err(|_| H1Error::BadLength)?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(H1Error::BadLength);
            }
            let n: u64 = part.parse().map_err(|_| H1Error::BadLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(H1Error::BadLength);
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// A response with both Transfer-Encoding and Content-Length may be an
/// attempt at request smuggling: read it, but never reuse the connection.
fn headers_have_both(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH)
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// What the decoder made of the bytes it was given.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Data(Bytes),
    /// Nothing to hand out until more bytes arrive.
    NeedMore,
    /// The body is complete.
    Done,
}

/// Takes a response body off the front of a buffer, frame by frame.
#[derive(Debug)]
pub struct Decoder {
    state: State,
}

#[derive(Debug, PartialEq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers { seen: usize },
    UntilClose,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Decoder { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes still to come, when that is known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Takes what it can from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Length(n) | State::ChunkData(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = n.min(buf.len() as u64);
                    let left = n - take;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::Done,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::ChunkSize => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers { seen: 0 }
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(H1Error::BadChunk);
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers { seen } => {
                    // Trailers are read and dropped: the client's TE was not forwarded.
                    let Some(line) = take_line(buf, MAX_HEAD - seen)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.state = if line.is_empty() {
                        State::Done
                    } else {
                        State::Trailers {
                            seen: seen + line.len() + 2,
                        }
                    };
                }
            }
        }
    }

    /// The connection closed: fine only for a body that runs until then.
    pub fn eof(&mut self) -> Result<(), H1Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(H1Error::Truncated),
        }
    }
}

/// Removes one CRLF-terminated line (without its CRLF) from `buf`.
fn take_line(buf: &mut BytesMut, limit: usize) -> Result<Option<BytesMut>, H1Error> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at <= limit => {
            let line = buf.split_to(at);
            buf.advance(2);
            Ok(Some(line))
        }
        Some(_) => Err(H1Error::BadChunk),
        None if buf.len() > limit => Err(H1Error::BadChunk),
        None => Ok(None),
    }
}

/// The hex size at the start of a chunk-size line; extensions are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // Extensions start with ';', after optional whitespace (RFC 9112 §7.1.1).
    let rest = &line[digits..];
    let rest_ok = match rest.iter().position(|b| !matches!(b, b' ' | b'\t')) {
        None => true,
        Some(at) => rest[at] == b';',
    };
    if digits == 0 || digits > 15 || !rest_ok {
        return Err(H1Error::BadChunk);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| H1Error::BadChunk)?;
    u64::from_str_radix(text, 16).map_err(|_| H1Error::BadChunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8], method: Method) -> Result<Option<ResponseHead>, H1Error> {
        parse_response(&mut BytesMut::from(text), &method)
    }

    /// Feeds `wire` to a decoder in pieces of `step` bytes; returns the body.
    fn decode_in_steps(framing: Framing, wire: &[u8], step: usize) -> Result<Vec<u8>, H1Error> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(bytes) => {
                    assert!(!bytes.is_empty(), "an empty frame would never end");
                    body.extend_from_slice(&bytes);
                }
                Decoded::Done => return Ok(body),
                Decoded::NeedMore if fed == wire.len() => {
                    decoder.eof()?;
                    return Ok(body);
                }
                Decoded::NeedMore => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn request_heads_are_origin_form_with_every_header() {
        let req = hyper::Request::get("/a/b?c=1")
            .header("host", "web.localhost")
            .header("x-two", "1")
            .header("x-two", "2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        assert_eq!(
            &encode_request(&parts)[..],
            b"GET /a/b?c=1 HTTP/1.1\r\nhost: web.localhost\r\nx-two: 1\r\nx-two: 2\r\n\r\n"
        );
    }

    #[test]
    fn heads_parse_in_any_split_and_leave_the_body() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let first = parse_response(&mut buf, &Method::GET).unwrap();
            buf.extend_from_slice(&wire[split..]);
            let head = match first {
                Some(head) => head,
                None => parse_response(&mut buf, &Method::GET).unwrap().unwrap(),
            };
            assert_eq!(head.status, 200);
            assert_eq!(head.headers["x-a"], "b");
            assert_eq!(head.framing, Framing::Length(5));
            assert!(head.reusable);
            assert_eq!(&buf[..], b"hello");
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let head = |text: &str, method: Method| parse(text.as_bytes(), method).unwrap().unwrap();
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(head(chunked, Method::GET).framing, Framing::Chunked);
        let smuggled = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(head(smuggled, Method::GET).framing, Framing::Chunked);
        assert!(!head(smuggled, Method::GET).reusable);
        let sized = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(head(sized, Method::HEAD).framing, Framing::Empty);
        let until_close = "HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(head(until_close, Method::GET).framing, Framing::UntilClose);
        assert!(!head(until_close, Method::GET).reusable);
        let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(!head(closing, Method::GET).reusable);
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(!head(old, Method::GET).reusable);
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(head(no_content, Method::GET).framing, Framing::Empty);
        assert!(head(no_content, Method::GET).reusable);
    }

    #[test]
    fn interim_answers_are_skipped_and_unasked_upgrades_refused() {
        let wire = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let head = parse(wire, Method::GET).unwrap().unwrap();
        assert_eq!(head.status, 200);
        let upgrade = b"HTTP/1.1 101 Switching Protocols\r\n\r\n";
        assert_eq!(
            parse(upgrade, Method::GET).unwrap_err(),
            H1Error::UnaskedUpgrade
        );
    }

    #[test]
    fn hostile_heads_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(
                parse(bad, Method::GET).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let agreeing = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n";
        assert_eq!(
            parse(agreeing, Method::GET).unwrap().unwrap().framing,
            Framing::Length(2)
        );
        let endless = vec![b'a'; MAX_HEAD + 10];
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX: "[..]);
        buf.extend_from_slice(&endless);
        assert_eq!(
            parse_response(&mut buf, &Method::GET).unwrap_err(),
            H1Error::HeadTooLarge
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        let too_many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(parse(too_many.as_bytes(), Method::GET).is_err());
    }

    #[test]
    fn bodies_decode_in_any_split() {
        let chunked = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: x\r\n\r\n";
        for step in 1..chunked.len() {
            assert_eq!(
                decode_in_steps(Framing::Chunked, chunked, step).unwrap(),
                b"hello world!"
            );
            assert_eq!(
                decode_in_steps(Framing::Length(12), b"hello world!", step).unwrap(),
                b"hello world!"
            );
            assert_eq!(
                decode_in_steps(Framing::UntilClose, b"hello world!", step).unwrap(),
                b"hello world!"
            );
        }
        assert_eq!(decode_in_steps(Framing::Empty, b"", 1).unwrap(), b"");
    }

    /// Parses a whole answer and decodes its body, as the router would.
    fn read_answer(wire: &[u8], step: usize) -> Result<Vec<u8>, H1Error> {
        let mut buf = BytesMut::from(wire);
        let head = parse_response(&mut buf, &Method::GET)?.ok_or(H1Error::Truncated)?;
        decode_in_steps(head.framing, &buf, step)
    }

    #[test]
    fn mangled_answers_are_errors_or_answers_never_panics() {
        let good: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            b"HTTP/1.1 103 Early\r\n\r\nHTTP/1.0 404 No\r\nX: y\r\n\r\ngone",
        ];
        for wire in good {
            assert!(read_answer(wire, 3).is_ok());
            // Every byte replaced in turn by bytes that matter to the grammar.
            for at in 0..wire.len() {
                for byte in [0u8, 0xff, b'\r', b'\n', b':', b' ', b'0', b'f', b';'] {
                    let mut bent = wire.to_vec();
                    bent[at] = byte;
                    let _ = read_answer(&bent, 1);
                    let _ = read_answer(&bent[..at], 7);
                }
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..3000 {
            // Half junk headers, half a chunked body of junk.
            let mut junk = if round % 2 == 0 {
                b"HTTP/1.1 200 OK\r\n".to_vec()
            } else {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()
            };
            for _ in 0..120 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet =
                    b"0123456789abcdefABCDEF\r\n:; \tTransfer-Encoding:chunked,Content-Length";
                junk.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = read_answer(&junk, 1 + (seed % 13) as usize);
        }
    }

    #[test]
    fn a_length_body_leaves_what_follows_it() {
        let mut decoder = Decoder::new(Framing::Length(3));
        let mut buf = BytesMut::from(&b"abcHTTP/1.1"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from("abc"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::Done);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    #[test]
    fn bad_and_cut_bodies_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"fffffffffffffffff\r\n",
            b"5 junk\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(
                decode_in_steps(Framing::Chunked, bad, 1).unwrap_err(),
                H1Error::BadChunk,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert_eq!(
            decode_in_steps(Framing::Chunked, &endless, 64).unwrap_err(),
            H1Error::BadChunk
        );
        assert_eq!(
            decode_in_steps(Framing::Chunked, b"5\r\nhel", 1).unwrap_err(),
            H1Error::Truncated
        );
        assert_eq!(
            decode_in_steps(Framing::Length(10), b"short", 2).unwrap_err(),
            H1Error::Truncated
        );
    }
}
