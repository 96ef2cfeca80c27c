//! The HTTP/1.1 wire format toward an instance, without any IO: request heads
//! and chunked request bodies out, response heads in, and the framing of
//! response bodies (RFC 9112 §6, §7).
//!
//! [`exchange`](super::exchange) drives this over a socket. Everything an
//! instance sends is checked: sizes are bounded, lengths must agree, chunk
//! sizes must parse, an answer framed two ways (both Content-Length and
//! Transfer-Encoding) is refused, and anything else is an [`H1Error`].

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
        "the instance answered with both Transfer-Encoding and Content-Length, which RFC 9112 \
         §6.3 treats as an error (a sign of response splitting)"
    )]
    BothLengths,
    #[error(
        "the instance answered 101 Switching Protocols to a request that asked for no upgrade"
    )]
    UnaskedUpgrade,
    #[error("the instance's chunked body is malformed")]
    BadChunk,
    #[error("the instance closed the connection before its answer was complete")]
    Truncated,
    #[error("reading the instance's answer failed: {0}")]
    Io(String),
}

impl H1Error {
    /// Whether the instance said something no client may be given (as
    /// opposed to stopping short): it answered, so it is not down.
    pub fn is_malformed(&self) -> bool {
        !matches!(self, H1Error::Truncated | H1Error::Io(_))
    }
}

impl From<std::io::Error> for H1Error {
    fn from(err: std::io::Error) -> H1Error {
        H1Error::Io(err.to_string())
    }
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

/// The line that starts a chunk of `len` bytes in a chunked request body.
pub fn chunk_head(len: usize) -> Bytes {
    Bytes::from(format!("{len:x}\r\n"))
}

/// What ends each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk of a chunked request body, without trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

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
/// A 101 is the final answer when the request asked for an upgrade
/// (`upgrade`); the bytes after it then belong to the new protocol.
pub fn parse_response(
    buf: &mut BytesMut,
    method: &Method,
    upgrade: bool,
) -> Result<Option<ResponseHead>, H1Error> {
    loop {
        let Some(head) = parse_one(buf, method)? else {
            return Ok(None);
        };
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return match upgrade {
                true => Ok(Some(head)),
                false => Err(H1Error::UnaskedUpgrade),
            };
        }
        // 100 Continue, 102, 103 Early Hints: interim answers, the real one follows.
        if head.status.is_informational() {
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
    let reusable = http11 && framing != Framing::UntilClose && !has_token(&headers, "close");
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        reusable,
    }))
}

/// RFC 9112 §6.3, in order; except that an answer with both
/// Transfer-Encoding and Content-Length, which §6.3 allows a client to read
/// by its Transfer-Encoding, is refused: it may be an attempt at response
/// splitting, and whatever the instance meant, passing it on (or reading the
/// connection further) would guess at it.
fn framing(headers: &HeaderMap, status: StatusCode, method: &Method) -> Result<Framing, H1Error> {
    if headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH) {
        return Err(H1Error::BothLengths);
    }
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
#[path = "h1_tests.rs"]
mod tests;
