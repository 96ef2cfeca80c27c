//! The wire format on every split of the input, and on hostile bytes.

use super::*;

fn parse(text: &[u8], method: Method) -> Result<Option<ResponseHead>, H1Error> {
    parse_response(&mut BytesMut::from(text), &method, false)
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
        let first = parse_response(&mut buf, &Method::GET, false).unwrap();
        buf.extend_from_slice(&wire[split..]);
        let head = match first {
            Some(head) => head,
            None => parse_response(&mut buf, &Method::GET, false)
                .unwrap()
                .unwrap(),
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
    for method in [Method::GET, Method::HEAD] {
        let refused = parse(smuggled.as_bytes(), method).unwrap_err();
        assert_eq!(refused, H1Error::BothLengths);
        assert!(refused.is_malformed());
    }
    assert!(!H1Error::Truncated.is_malformed());
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
    let mut asked = BytesMut::from(
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00"[..],
    );
    let head = parse_response(&mut asked, &Method::GET, true)
        .unwrap()
        .unwrap();
    assert_eq!(head.status, 101);
    assert_eq!(&asked[..], b"\x81\x00", "the new protocol's bytes stay");
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
        parse_response(&mut buf, &Method::GET, false).unwrap_err(),
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
    let head = parse_response(&mut buf, &Method::GET, false)?.ok_or(H1Error::Truncated)?;
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
